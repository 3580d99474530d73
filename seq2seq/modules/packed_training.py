"""nn.GRU and nn.LSTM that train packed input on seq2seq's own loop (recurrence.py), and padded
input with dropout between layers one layer at a time.

torch's CPU recurrences over a PackedSequence take each step's rows of the whole sequence's input
projection (N, G*H) with `narrow`; in the backward pass each of those T narrows turns into a
zero-filled (N, G*H) gradient that is added to the sum, so one backward costs T * N * G * H
additions: quadratic in the length. `recur` splits the projection once (one `cat` backward). One
bidirectional layer of 128, forward and backward together, `recur`'s speed-up over torch's:

| batch x longest | GRU fp32 | GRU bf16 | LSTM fp32 | LSTM bf16 |
|---|---|---|---|---|
| 300 x 20 (Multi30k-like) | 1.23x | 1.04x | 1.42x | 1.12x |
| 28 x 320 (DialogSum-like) | 3.44x | 1.96x | 6.08x | 2.06x |

(2-core AMD EPYC Zen 4, median of 5, one run alone; `python tools/bench_packed.py` prints this table.) Without
gradients (decoding) there is no backward, and torch's own loop is kept; so it is for padded
(unpacked) input, which the decoders pass, and for other devices than the CPU (cuDNN's fused
kernels on CUDA). Parameters, names and weight files are nn.GRU's /
nn.LSTM's, so a trained model loads in either.

Padded input (the decoders') in CPU training with dropout between layers runs one layer at a time
(`by_layer`), each layer torch's own call, with seq2seq's dropout (dropout.py) between them: torch's
multi-layer call draws those masks with `bernoulli_`, three times as slow.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from seq2seq.modules import dropout as drop
from seq2seq.modules.cells import GRUCell, LSTMCell
from seq2seq.modules.recurrence import recur


def on_loop(rnn: nn.RNNBase, input) -> bool:
    """Whether `rnn` (nn.GRU / nn.LSTM with biases and no projection) takes `input` on the loop:
    packed CPU input with gradients. Other devices keep torch's (cuDNN on CUDA); so does an
    attribute `packed_on_loop = False` on the module (tools/baselines.py)."""
    return (isinstance(input, PackedSequence) and input.data.device.type == "cpu"
            and torch.is_grad_enabled() and rnn.bias
            and getattr(rnn, "proj_size", 0) == 0 and getattr(rnn, "packed_on_loop", True))


def run_on_loop(rnn: nn.RNNBase, cell, input: PackedSequence, hx):
    """rnn's forward over packed `input` by `recur`, with the same parameters."""
    suffixes = ("", "_reverse")[:2 if rnn.bidirectional else 1]
    params = [{key: getattr(rnn, f"{key}_l{layer}{suffix}")
               for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
              for layer in range(rnn.num_layers) for suffix in suffixes]
    return recur(cell, params, input, hx, rnn.hidden_size, rnn.bidirectional, rnn.batch_first,
                 rnn.dropout if rnn.training else 0.0)


def by_layer(rnn: nn.RNNBase, input) -> bool:
    """Whether `rnn` (nn.GRU / nn.LSTM) runs `input` one layer at a time, with seq2seq's dropout."""
    return (isinstance(input, torch.Tensor) and input.dim() == 3 and input.device.type == "cpu"
            and rnn.training and rnn.dropout > 0 and rnn.num_layers > 1 and rnn.bias
            and getattr(rnn, "proj_size", 0) == 0 and drop.fast_masks and not torch.compiler.is_compiling())


def run_by_layer(rnn: nn.RNNBase, input: torch.Tensor, hx):
    """rnn's forward, each layer one call of torch.gru / torch.lstm, with seq2seq's dropout between
    layers as rnn's own."""
    lstm = isinstance(rnn, nn.LSTM)
    layer_call = torch.lstm if lstm else torch.gru
    directions = 2 if rnn.bidirectional else 1
    if hx is None:
        zeros = input.new_zeros(rnn.num_layers * directions, input.size(0 if rnn.batch_first else 1),
                                rnn.hidden_size)
        hx = (zeros, zeros) if lstm else zeros
    states = hx if lstm else (hx,)
    suffixes = ("", "_reverse")[:directions]
    x, finals = input, []
    for layer in range(rnn.num_layers):
        weights = [getattr(rnn, f"{key}_l{layer}{suffix}") for suffix in suffixes
                   for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        rows = tuple(s[layer * directions:(layer + 1) * directions] for s in states)
        x, *final = layer_call(x, rows if lstm else rows[0], weights, True, 1, 0.0, True,
                               rnn.bidirectional, rnn.batch_first)
        finals.append(final)
        if layer < rnn.num_layers - 1:
            x = drop.dropout(x, rnn.dropout)
    h_n = tuple(torch.cat(parts, 0) for parts in zip(*finals))
    return x, (h_n if lstm else h_n[0])


class GRU(nn.GRU):
    """nn.GRU; packed input with gradients runs on the loop with GRUCell (nn.GRU's step), padded
    input in CPU training with dropout between layers one layer at a time."""

    def forward(self, input, hx=None):
        if on_loop(self, input):
            return run_on_loop(self, GRUCell(), input, hx)
        if by_layer(self, input):
            return run_by_layer(self, input, hx)
        return super().forward(input, hx)


def lstm_on_loop(rnn: nn.LSTM, input, hx):
    """For nn.LSTM subclasses (modules/lstm.py): the loop's result with LSTMCell, or None."""
    return run_on_loop(rnn, LSTMCell(), input, hx) if on_loop(rnn, input) else None
