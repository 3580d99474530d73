"""nn.GRU and nn.LSTM that train packed input on seq2seq's own loop (recurrence.py).

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
(unpacked) input, which the decoders pass. Parameters, names and weight files are nn.GRU's /
nn.LSTM's, so a trained model loads in either.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from seq2seq.modules.cells import GRUCell, LSTMCell
from seq2seq.modules.recurrence import recur


def on_loop(rnn: nn.RNNBase, input) -> bool:
    """Whether `rnn` (nn.GRU / nn.LSTM with biases and no projection) takes `input` on the loop;
    an attribute `packed_on_loop = False` on the module keeps torch's (tools/baselines.py)."""
    return (isinstance(input, PackedSequence) and torch.is_grad_enabled() and rnn.bias
            and getattr(rnn, "proj_size", 0) == 0 and getattr(rnn, "packed_on_loop", True))


def run_on_loop(rnn: nn.RNNBase, cell, input: PackedSequence, hx):
    """rnn's forward over packed `input` by `recur`, with the same parameters."""
    suffixes = ("", "_reverse")[:2 if rnn.bidirectional else 1]
    params = [{key: getattr(rnn, f"{key}_l{layer}{suffix}")
               for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
              for layer in range(rnn.num_layers) for suffix in suffixes]
    return recur(cell, params, input, hx, rnn.hidden_size, rnn.bidirectional, rnn.batch_first,
                 rnn.dropout if rnn.training else 0.0)


class GRU(nn.GRU):
    """nn.GRU; packed input with gradients runs on the loop with GRUCell (nn.GRU's step)."""

    def forward(self, input, hx=None):
        if on_loop(self, input):
            return run_on_loop(self, GRUCell(), input, hx)
        return super().forward(input, hx)


def lstm_on_loop(rnn: nn.LSTM, input, hx):
    """For nn.LSTM subclasses (modules/lstm.py): the loop's result with LSTMCell, or None."""
    return run_on_loop(rnn, LSTMCell(), input, hx) if on_loop(rnn, input) else None
