"""A recurrent layer over any cell of seq2seq/modules/cells.py, with nn.LSTM's interface.

`Recurrence(cell, input_size, hidden_size, num_layers, batch_first, bidirectional, dropout)` is
called as nn.LSTM is: `forward(x, hx) -> (outputs, h_n)` with x (B, T, I) (batch_first) or a
PackedSequence, hx and h_n (h, c) of (L*D, B, H) each for cells with a cell state (a bare h for
one-state cells), dropout on every layer's outputs but the last's. The parameters nn.LSTM has
carry nn.LSTM's names and shapes (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), so initialisation
and weight files treat them alike; a cell's own parameters are named by the cell.

The work per layer and direction: one matmul projects every time step's input (packed data
holds only real tokens, so padding costs nothing); then a Python loop of `cell.step`, one
recurrent matmul and the fused gate arithmetic per step. Packed input is time-major with
batch_sizes[t] rows at step t, longest first, so the rows that run at step t are always the first
batch_sizes[t]: forward, the state sheds rows as sentences end; backward, it gains rows as
sentences begin (at their last token), each from its own initial state.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

State = tuple[torch.Tensor, ...]  # (h,) or (h, c), each (n, H)


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
        """nn.LSTM's: every parameter uniform in +-1/sqrt(H), the cell's own included."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{type(self.cell).__name__}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, batch_first={self.batch_first}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")

    def forward(self, input: torch.Tensor | PackedSequence,
                hx: torch.Tensor | tuple[torch.Tensor, ...] | None = None):
        """input (B, T, I) (batch_first; else (T, B, I)) or packed -> outputs of the same layout
        with D*H features, and the final state (L*D, B, H) per state tensor, as nn.LSTM."""
        packed = isinstance(input, PackedSequence)
        if packed:
            x, sizes = input.data, input.batch_sizes.tolist()  # (N, I) time-major, rows per step
            batch = sizes[0]
        else:
            if input.dim() != 3:
                raise ValueError(f"Recurrence expects a 3-D input or a PackedSequence, got {tuple(input.shape)}")
            x = input if self.batch_first else input.transpose(0, 1)  # (B, T, I)
            batch = x.size(0)
        state0 = self._initial_state(hx, batch, x)
        if packed and input.sorted_indices is not None:  # hx is in the caller's order
            state0 = tuple(s.index_select(1, input.sorted_indices) for s in state0)

        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                p = {key: getattr(self, name) for key, name in self._names[index].items()}
                xg = self.cell.project(x, p)  # (N, G*H) or (B, T, G*H): one matmul
                steps = list(xg.split(sizes, 0)) if packed else list(xg.unbind(1))
                run = self._backward if direction else self._forward
                outs, final = run(steps, tuple(s[index] for s in state0), self.cell.weights(p))
                outputs.append(torch.cat(outs, 0) if packed else torch.stack(outs, 1))
                finals.append(final)
            x = outputs[0] if self.num_directions == 1 else torch.cat(outputs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)

        h_n = tuple(torch.stack(parts, 0) for parts in zip(*finals))  # (L*D, B, H) each
        if packed:
            if input.unsorted_indices is not None:
                h_n = tuple(s.index_select(1, input.unsorted_indices) for s in h_n)
            output = PackedSequence(x, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        else:
            output = x if self.batch_first else x.transpose(0, 1)
        return output, (h_n if self.cell.state_size > 1 else h_n[0])

    def _initial_state(self, hx, batch: int, x: torch.Tensor) -> State:
        """hx as nn.LSTM takes it ((h, c), or h for one-state cells, or None: zeros) -> a tuple of
        (L*D, B, H) tensors."""
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            zeros = torch.zeros(shape, dtype=x.dtype, device=x.device)
            return (zeros,) * self.cell.state_size
        state = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        if len(state) != self.cell.state_size:
            raise ValueError(f"{type(self.cell).__name__} takes a state of {self.cell.state_size} "
                             f"tensor(s), got {len(state)}")
        for s in state:
            if tuple(s.shape) != shape:
                raise ValueError(f"expected a hidden state of shape {shape}, got {tuple(s.shape)}")
        return state

    def _forward(self, steps: list[torch.Tensor], state: State, w: tuple):
        """Left to right. steps: per time step (n_t, G*H), n_t not increasing; state (B, H) each
        -> outputs per step (n_t, H), final state (B, H) each: every row's after its last token."""
        outs, ended = [], []  # ended: the row blocks that stopped, in the order they stopped
        for xg in steps:
            n = xg.size(0)
            if n < state[0].size(0):  # rows n.. have ended
                ended.append(tuple(s[n:] for s in state))
                state = tuple(s[:n] for s in state)
            state = self.cell.step(xg, state, w)
            outs.append(state[0])
        ended.append(state)  # the longest rows, first in the batch
        final = tuple(torch.cat(parts, 0) for parts in zip(*reversed(ended)))
        return outs, final

    def _backward(self, steps: list[torch.Tensor], state0: State, w: tuple):
        """Right to left, each row starting at its own last token from its initial state.
        Same arguments and results as _forward; the final state is every row's after its first
        token."""
        outs = []
        state = tuple(s[:steps[-1].size(0)] for s in state0)
        for xg in reversed(steps):
            n, running = xg.size(0), state[0].size(0)
            if n > running:  # rows running.. begin here
                state = tuple(torch.cat([s, s0[running:n]], 0) for s, s0 in zip(state, state0))
            state = self.cell.step(xg, state, w)
            outs.append(state[0])
        outs.reverse()
        return outs, state
