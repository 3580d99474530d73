"""A recurrent layer over any cell of seq2seq/modules/cells.py, with nn.LSTM's interface.

`Recurrence(cell, input_size, hidden_size, num_layers, batch_first, bidirectional, dropout)` is
called as nn.LSTM is: `forward(x, hx) -> (outputs, h_n)` with x (B, T, I) (batch_first) or a
PackedSequence, hx and h_n (h, c) of (L*D, B, H) each for cells with a cell state (a bare h for
one-state cells), dropout on every layer's outputs but the last's. The parameters nn.LSTM has
carry nn.LSTM's names and shapes (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), so initialisation
and weight files treat them alike; a cell's own parameters are named by the cell.

The work per layer and direction: one matmul projects every time step's input (packed data
holds only real tokens, so padding costs nothing); then a Python loop of `cell.step`, one
recurrent matmul and the fused gate arithmetic per step (in training the recurrent matrix's
gradient is one matmul over all steps, deferred_grad.py); for GRUCell over packed input with
gradients (the encoders' training) the whole loop of a layer and direction is one autograd step
instead (gru_sequence.py). Packed input is time-major with
batch_sizes[t] rows at step t, longest first, so the rows that run at step t are always the first
batch_sizes[t]: forward, the state sheds rows as sentences end; backward, it gains rows as
sentences begin (at their last token), each from its own initial state.

The loop is `recur`, a function of the cell and per-(layer, direction) parameters. `cell: gru` and
`cell: lstm` are torch's own nn.GRU / nn.LSTM for the decoders' padded input and for decoding:
under CPU bf16 autocast their input projections and per-step matmuls already run in bf16 (autocast
casts each weight once per region, its cache), and nn.GRU measured faster than this loop with
GRUCell in the decoder's one-step calls (the Multi30k reference recipe, tools/bench.py, one run:
training 1.86x fp32 against 1.63x; beam-5 decoding 143 against 131 sentences/s; greedy 441 against
336). Packed input with gradients, the encoders' training, runs on this loop with GRUCell /
LSTMCell instead, whose backward is linear in the length where torch's is not
(packed_training.py). GRUCell is also the oracle of the bf16 path's tests, and the base of cells
that change the GRU's step.

Under CPU bf16 autocast (`cpu_bf16`: the only thing read of the precision) `recur` casts each
layer-direction's matrices (`weight_*`) to bf16 once per call; the input projection of the whole
sequence is one bf16 matmul (autocast's F.linear), converted to fp32 once; each step's recurrent
matmul runs in bf16 on the state cast to bf16 (cells.recurrent_matmul); the gate arithmetic, the
carried state and the final state are fp32; each layer's outputs are cast to bf16 once (what the
next layer's projection and autocast's matmuls downstream read). Elsewhere everything is as the
parameters' dtype (fp32) and no cast is made.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from seq2seq.modules import dropout as drop
from seq2seq.modules import gru_sequence
from seq2seq.modules.deferred_grad import DeferredWeight

State = tuple[torch.Tensor, ...]  # (h,) or (h, c), each (n, H)
Params = dict[str, torch.Tensor]  # one layer-direction's parameters by short name: weight_ih, ...


def cpu_bf16(x: torch.Tensor) -> bool:
    """Whether x is on the CPU inside a bf16 autocast region."""
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


class Recurrence(nn.Module):
    """nn.LSTM's constructor with the cell first (an object of seq2seq/modules/cells.py):
    Recurrence(PeepholeLSTMCell(), input_size, hidden_size, num_layers, batch_first, ...)."""

    def __init__(self, cell, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = False, bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout={dropout} applies between layers; with one layer it has no effect")
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        self.bidirectional, self.dropout = bidirectional, dropout
        self.num_directions = 2 if bidirectional else 1
        rows = cell.gates * hidden_size
        self._names: list[dict[str, str]] = []  # per (layer, direction): short name -> attribute
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            shapes = {"weight_ih": (rows, layer_input), "weight_hh": (rows, hidden_size),
                      "bias_ih": (rows,), "bias_hh": (rows,), **cell.extra_shapes(hidden_size)}
            for suffix in ("", "_reverse")[:self.num_directions]:
                names = {key: f"{key}_l{layer}{suffix}" for key in shapes}
                for key, shape in shapes.items():
                    self.register_parameter(names[key], nn.Parameter(torch.empty(shape)))
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.LSTM's: every parameter uniform in +-1/sqrt(H), the cell's own included, but for those
        the cell starts at a constant (reset_constants)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.reset_constants()

    def reset_constants(self) -> None:
        """The cell's `initial_values` (layer-norm gains 1, biases 0) in every layer and direction;
        seq2seq/modules/init.py calls it after its own scheme too."""
        for names in self._names:
            for key, value in self.cell.initial_values.items():
                nn.init.constant_(getattr(self, names[key]), value)

    def extra_repr(self) -> str:
        return (f"{type(self.cell).__name__}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, batch_first={self.batch_first}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")

    def forward(self, input: torch.Tensor | PackedSequence,
                hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None):
        """input (B, T, I) (batch_first; else (T, B, I)) or packed -> outputs of the same layout
        with D*H features, and the final state (L*D, B, H) per state tensor, as nn.LSTM."""
        params = [{key: getattr(self, name) for key, name in names.items()} for names in self._names]
        return recur(self.cell, params, input, hx, self.hidden_size, self.bidirectional,
                     self.batch_first, self.dropout if self.training else 0.0)


def recur(cell, params: list[Params], input: torch.Tensor | PackedSequence,
          hx: torch.Tensor | tuple[torch.Tensor, ...] | None, hidden_size: int, bidirectional: bool,
          batch_first: bool, dropout: float = 0.0):
    """Every layer and direction of `cell` over `input`, as nn.LSTM's forward: params[k] holds
    layer k // D, direction k % D (D = 2 if bidirectional); `dropout` (0 outside training) goes on
    every layer's outputs but the last's. input (B, T, I) (batch_first; else (T, B, I)) or packed
    -> (outputs of the same layout with D*H features, the final state (L*D, B, H) per state
    tensor: a tuple for cells with a cell state, else h alone)."""
    num_directions = 2 if bidirectional else 1
    num_layers = len(params) // num_directions
    packed = isinstance(input, PackedSequence)
    if packed:
        x, sizes = input.data, input.batch_sizes.tolist()  # (N, I) time-major, rows per step
        batch = sizes[0]
    else:
        if input.dim() != 3:
            raise ValueError(f"a recurrence expects a 3-D input or a PackedSequence, got {tuple(input.shape)}")
        x = input if batch_first else input.transpose(0, 1)  # (B, T, I)
        batch = x.size(0)
    bf16 = cpu_bf16(x)
    state0 = _initial_state(cell, hx, (num_layers * num_directions, batch, hidden_size), x)
    if bf16:
        state0 = tuple(s.float() for s in state0)  # the carried state is fp32
    if packed and input.sorted_indices is not None:  # hx is in the caller's order
        state0 = tuple(s.index_select(1, input.sorted_indices) for s in state0)

    finals: list[State] = []
    for layer in range(num_layers):
        outputs = []
        for direction in range(num_directions):
            index = layer * num_directions + direction
            p = params[index]
            if bf16:  # once per call, not per step
                p = {key: v.to(torch.bfloat16) if key.startswith("weight") else v for key, v in p.items()}
            xg = cell.project(x, p)  # (N, G*H) or (B, T, G*H): one matmul
            if bf16:
                xg = xg.float()  # autocast gave bf16; the gate arithmetic is fp32
            w = cell.weights(p)
            if gru_sequence.takes(cell, packed, xg, w):  # one autograd step (gru_sequence.py)
                out, final = gru_sequence.run(xg, sizes, state0[0][index], *w, reverse=direction == 1)
                outputs.append(out)
                finals.append((final,))
                continue
            steps = list(xg.split(sizes, 0)) if packed else list(xg.unbind(1))
            run = _right_to_left if direction else _left_to_right
            if torch.is_grad_enabled() and w[0].requires_grad and len(steps) > 1:
                w = (DeferredWeight(w[0]),) + w[1:]  # W_hh's gradient in one matmul (deferred_grad.py)
            outs, final = run(cell, steps, tuple(s[index] for s in state0), w)
            outputs.append(torch.cat(outs, 0) if packed else torch.stack(outs, 1))
            finals.append(final)
        x = outputs[0] if num_directions == 1 else torch.cat(outputs, -1)
        if bf16:
            x = x.to(torch.bfloat16)
        if dropout > 0 and layer < num_layers - 1:
            x = drop.dropout(x, dropout)

    h_n = tuple(torch.stack(parts, 0) for parts in zip(*finals))  # (L*D, B, H) each
    if packed:
        if input.unsorted_indices is not None:
            h_n = tuple(s.index_select(1, input.unsorted_indices) for s in h_n)
        output = PackedSequence(x, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    else:
        output = x if batch_first else x.transpose(0, 1)
    return output, (h_n if cell.state_size > 1 else h_n[0])


def _initial_state(cell, hx, shape: tuple[int, int, int], x: torch.Tensor) -> State:
    """hx as nn.LSTM takes it ((h, c), or h for one-state cells, or None: zeros) -> a tuple of
    tensors of `shape` (L*D, B, H)."""
    if hx is None:
        zeros = torch.zeros(shape, dtype=x.dtype, device=x.device)
        return (zeros,) * cell.state_size
    state = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
    if len(state) != cell.state_size:
        raise ValueError(f"{type(cell).__name__} takes a state of {cell.state_size} tensor(s), got {len(state)}")
    for s in state:
        if tuple(s.shape) != shape:
            raise ValueError(f"expected a hidden state of shape {shape}, got {tuple(s.shape)}")
    return state


def _left_to_right(cell, steps: list[torch.Tensor], state: State, w: tuple):
    """steps: per time step (n_t, G*H), n_t not increasing; state (B, H) each -> outputs per step
    (n_t, H), final state (B, H) each: every row's after its last token."""
    outs, ended = [], []  # ended: the row blocks that stopped, in the order they stopped
    for xg in steps:
        n = xg.size(0)
        if n < state[0].size(0):  # rows n.. have ended
            ended.append(tuple(s[n:] for s in state))
            state = tuple(s[:n] for s in state)
        state = cell.step(xg, state, w)
        outs.append(state[0])
    ended.append(state)  # the longest rows, first in the batch
    final = tuple(torch.cat(parts, 0) for parts in zip(*reversed(ended)))
    return outs, final


def _right_to_left(cell, steps: list[torch.Tensor], state0: State, w: tuple):
    """Each row starting at its own last token from its initial state. Same arguments and results
    as _left_to_right; the final state is every row's after its first token."""
    outs = []
    state = tuple(s[:steps[-1].size(0)] for s in state0)
    for xg in reversed(steps):
        n, running = xg.size(0), state[0].size(0)
        if n > running:  # rows running.. begin here
            state = tuple(torch.cat([s, s0[running:n]], 0) for s, s0 in zip(state, state0))
        state = cell.step(xg, state, w)
        outs.append(state[0])
    outs.reverse()
    return outs, state
