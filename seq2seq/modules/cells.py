"""The arithmetic of one recurrent step: nn.LSTM's, the peephole LSTM's, the working-memory LSTM's
and nn.GRU's.

A cell holds no parameters and no state. It tells the loop that runs it (`recur` in
seq2seq/modules/recurrence.py, for `Recurrence` and `GRU`) what to register and how to step:

- `gates`: blocks of H rows in `weight_ih` (G*H, I), `weight_hh` (G*H, H), `bias_ih` and `bias_hh`
  (G*H,), the parameters every cell has, named and shaped as in nn.LSTM / nn.GRU;
- `state_size`: 2 when the state is (h, c) as nn.LSTM's, 1 when it is h alone as nn.GRU's;
- `extra_shapes(H)`: its own parameters besides those, name -> shape (one set per layer and
  direction, registered as `{name}_l{k}` and `{name}_l{k}_reverse`);
- `initial_values`: those of its own parameters that start at a constant, name -> value (the
  layer-norm gains 1, biases 0); every other parameter starts uniform, as nn.LSTM's;
- `project(x, p)`: every time step's input projection in one matmul, (N, I) -> (N, G*H);
- `weights(p)`: what `step` needs, prepared once per call (transposes, slices), as a tuple;
- `step(xg, state, w)`: one time step for the rows still running: xg (n, G*H) from `project`,
  state a tuple of (n, H) tensors -> the new state, whose first entry is the output h.

`p` is one layer-direction's parameters by their short names (`weight_ih`, `peephole`, ...).
The GRU fits the same slots: gates 3, state_size 1, `project` folding only the r and z parts of
`bias_hh` into the projection, `step` adding the n part inside r * (W_hn h + b_hn).
Gate order is nn.LSTM's (input i, forget f, cell candidate g, output o) and nn.GRU's (r, z, n).
The layer-normalised cells (`model.*.layer_norm`, at the end of this file) change two places of a
step, which the LSTM cells call as `preactivations` (the gates' sum before the nonlinearities) and
`squash` (tanh of the new cell state), and the GRU as `recurrent_term`.

Under CPU bf16 autocast the loop hands `weights` and `project` parameters whose matrices
(`weight_*`) it has cast to bf16, the biases and peepholes left fp32: `project`'s F.linear is
autocast's (input and bias cast to bf16 there), and a step's matmuls go through `recurrent_matmul`,
which casts the fp32 state to bf16 for the matmul and adds its bf16 result in fp32, so the gate
arithmetic and the state stay fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.modules.deferred_grad import DeferredWeight
from seq2seq.modules.gru_gates import gru_gates


def recurrent_matmul(bias: torch.Tensor, state: torch.Tensor,
                     weight: torch.Tensor | DeferredWeight) -> torch.Tensor:
    """bias + state @ weight: bias (n, K) or (K,), state (n, H) fp32, weight (H, K) -> (n, K) fp32.
    One fused addmm when weight is fp32; when it is bf16 (the CPU bf16 path) the matmul runs in bf16
    on the state cast to bf16, and the sum is taken in fp32 (torch's type promotion). A
    DeferredWeight (the loop's W_hh in training, deferred_grad.py) takes its gradient once for all
    steps."""
    if isinstance(weight, DeferredWeight):
        return bias + weight.matmul(state.to(weight.dtype))
    if weight.dtype == state.dtype:
        return torch.addmm(bias, state, weight)
    return bias + torch.mm(state.to(weight.dtype), weight)


class LSTMCell:
    """nn.LSTM's step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):
    i, f, o = sigmoid(.), g = tanh(.), c' = f * c + i * g, h' = o * tanh(c'). The oracle that the
    recurrence itself is tested with, and the base of the two cells below."""

    gates = 4
    state_size = 2
    initial_values: dict[str, float] = {}

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {}

    def project(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (..., I) -> (..., 4H); both biases folded in, so a step adds only W_hh h."""
        return F.linear(x, p["weight_ih"], p["bias_ih"] + p["bias_hh"])

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (p["weight_hh"].t(),)  # (H, 4H); the cells below append theirs

    def preactivations(self, xg: torch.Tensor, h: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """xg (n, 4H) from `project`, h (n, H) -> every gate's pre-activation (n, 4H)."""
        return recurrent_matmul(xg, h, w[0])  # the one recurrent matmul

    def squash(self, c: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """tanh of the new cell state c (n, H), what h' = o * tanh(c') multiplies."""
        return torch.tanh(c)

    def step(self, xg: torch.Tensor, state: tuple[torch.Tensor, ...],
             w: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state  # (n, H) each
        i, f, g, o = self.preactivations(xg, h, w).chunk(4, 1)  # (n, H) each
        c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))
        return torch.sigmoid(o) * self.squash(c, w), c


class PeepholeLSTMCell(LSTMCell):
    """Peephole connections (Gers & Schmidhuber 2000, "Recurrent nets that time and count"): the
    input and forget gates see the previous cell state, the output gate the new one, each through
    a per-unit (diagonal) weight:

        i = sigmoid(W_i x + U_i h + p_i * c),  f = sigmoid(W_f x + U_f h + p_f * c)
        c' = f * c + i * tanh(W_g x + U_g h),  o = sigmoid(W_o x + U_o h + p_o * c')
        h' = o * tanh(c')

    `peephole` (3H,) holds p_i, p_f, p_o; at zero the cell is nn.LSTM's.
    """

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {"peephole": (3 * hidden_size,)}

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        peep = p["peephole"].view(3, -1)  # (3, H): rows i, f, o
        return p["weight_hh"].t(), peep[:2], peep[2]  # (H, 4H), (2, H), (H,)

    def step(self, xg: torch.Tensor, state: tuple[torch.Tensor, ...],
             w: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state  # (n, H) each
        peep_if, peep_o = w[1:3]
        n, hidden = c.shape
        gates = self.preactivations(xg, h, w)  # (n, 4H)
        i_f = torch.sigmoid(torch.addcmul(gates[:, :2 * hidden].view(n, 2, hidden), peep_if,
                                          c.unsqueeze(1)))  # (n, 2, H): both gates at once
        c = torch.addcmul(i_f[:, 1] * c, i_f[:, 0], torch.tanh(gates[:, 2 * hidden:3 * hidden]))
        o = torch.sigmoid(torch.addcmul(gates[:, 3 * hidden:], peep_o, c))
        return o * self.squash(c, w), c


class WorkingMemoryLSTMCell(LSTMCell):
    """Working Memory Connections (Landi, Baraldi, Cornia & Cucchiara 2021, "Working Memory
    Connections for LSTM", Neural Networks 144): each gate sees the cell state through a full
    matrix, bounded by tanh so that a large cell cannot saturate the gates:

        i = sigmoid(W_i x + U_i h + tanh(V_i c + b_ci)),  f = sigmoid(... + tanh(V_f c + b_cf))
        c' = f * c + i * tanh(W_g x + U_g h),  o = sigmoid(W_o x + U_o h + tanh(V_o c' + b_co))
        h' = o * tanh(c')

    `weight_ch` (3H, H) holds V_i, V_f, V_o and `bias_ch` (3H,) their biases; both at zero give
    tanh(0) = 0, nn.LSTM's cell.
    """

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {"weight_ch": (3 * hidden_size, hidden_size), "bias_ch": (3 * hidden_size,)}

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        hidden = p["weight_hh"].size(1)
        w_ch, b_ch = p["weight_ch"], p["bias_ch"]
        return (p["weight_hh"].t(), w_ch[:2 * hidden].t(), b_ch[:2 * hidden],  # (H, 4H) (H, 2H) (2H,)
                w_ch[2 * hidden:].t(), b_ch[2 * hidden:])  # (H, H), (H,)

    def step(self, xg: torch.Tensor, state: tuple[torch.Tensor, ...],
             w: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state  # (n, H) each
        w_c_if, b_c_if, w_c_o, b_c_o = w[1:5]
        hidden = c.size(1)
        gates = self.preactivations(xg, h, w)  # (n, 4H)
        memory = torch.tanh(recurrent_matmul(b_c_if, c, w_c_if))  # (n, 2H): the old cell, for i and f
        i_f = torch.sigmoid(gates[:, :2 * hidden] + memory)  # (n, 2H)
        c = torch.addcmul(i_f[:, hidden:] * c, i_f[:, :hidden],
                          torch.tanh(gates[:, 2 * hidden:3 * hidden]))
        o = torch.sigmoid(gates[:, 3 * hidden:] + torch.tanh(recurrent_matmul(b_c_o, c, w_c_o)))
        return o * self.squash(c, w), c


class GRUCell:
    """nn.GRU's step (Cho et al. 2014, as torch writes it):

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

    The r and z parts of bias_hh join the input projection; b_hn stays inside r * (...)."""

    gates = 3
    state_size = 1
    initial_values: dict[str, float] = {}

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {}

    def project(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (..., I) -> (..., 3H): W_i x + b_i, plus b_hr and b_hz."""
        b_hh = p["bias_hh"]
        hidden = b_hh.size(0) // 3
        return F.linear(x, p["weight_ih"], p["bias_ih"] + torch.cat([b_hh[:2 * hidden], b_hh.new_zeros(hidden)]))

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        b_hh = p["bias_hh"]
        hidden = b_hh.size(0) // 3
        b_hn = torch.cat([b_hh.new_zeros(2 * hidden), b_hh[2 * hidden:]])  # (3H,): b_hn alone
        return p["weight_hh"].t(), b_hn  # (H, 3H), (3H,)

    def recurrent_term(self, h: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """h (n, H) -> (n, 3H): W_h h, plus b_hn in the n part."""
        return recurrent_matmul(w[1], h, w[0])

    def step(self, xg: torch.Tensor, state: tuple[torch.Tensor, ...],
             w: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        (h,) = state  # (n, H)
        return (gru_gates(xg, self.recurrent_term(h, w), h),)  # gru_gates.py: one autograd step


# ---------------------------------------------------------------- layer normalisation (model.*.layer_norm)

def gate_norm(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, gates: int) -> torch.Tensor:
    """Layer normalisation of each gate block on its own: x (..., G*H) -> (..., G*H), each block of H
    units to mean 0 and variance 1 (F.layer_norm, eps 1e-5), then times `gain` plus `bias` (G*H,),
    per unit. x is taken in the gain's dtype: fp32 under CPU bf16 autocast, where F.layer_norm would
    otherwise stay in bf16."""
    blocks = x.to(gain.dtype).unflatten(-1, (gates, -1))  # (..., G, H)
    return torch.addcmul(bias, F.layer_norm(blocks, blocks.shape[-1:]).flatten(-2), gain)


def _norm_shapes(gates: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
    rows = (gates * hidden_size,)
    return {"ln_ih_weight": rows, "ln_ih_bias": rows, "ln_hh_weight": rows, "ln_hh_bias": rows}


_NORM_START = {"ln_ih_weight": 1.0, "ln_ih_bias": 0.0, "ln_hh_weight": 1.0, "ln_hh_bias": 0.0}


class LayerNormLSTMCell(LSTMCell):
    """The LSTM with layer normalisation inside the recurrence (Ba, Kiros & Hinton 2016, "Layer
    Normalization", section 3.1 and its LSTM appendix; the normalised RNNs of Nematus and Sockeye):

        (i, f, g, o) = LN(W x + b_ih; ln_ih) + LN(U h + b_hh; ln_hh)     LN per gate block of H
        c' = f * c + i * g  (sigmoid i, f, o; tanh g),  h' = o * tanh(LN(c'; ln_c))

    The input term and the recurrent term are normalised apart, before they are summed, so neither
    sets the other's scale; `project` normalises the input term of every time step at once. The
    statistics are each gate block's own (each of the 4 blocks of H rows of nn.LSTM's layout), and
    each unit has its gain and bias (`ln_ih_weight`, `ln_ih_bias`, `ln_hh_*` (4H,), `ln_c_*` (H,);
    gains start at 1, biases at 0). nn.LSTM's biases sit inside the normalisation, as Nematus's
    W x + b (Sockeye adds them after it, and normalises all 4H as one block). The cell state is
    carried unnormalised (Ba et al., Sockeye); only what tanh reads is.

    The peephole and working-memory cells take the same normalisation (the classes below): their
    cell-state terms join the normalised sum unnormalised, and read the unnormalised cell state.
    """

    initial_values = {**_NORM_START, "ln_c_weight": 1.0, "ln_c_bias": 0.0}

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {**super().extra_shapes(hidden_size), **_norm_shapes(4, hidden_size),
                "ln_c_weight": (hidden_size,), "ln_c_bias": (hidden_size,)}

    def project(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (..., I) -> LN(W x + b_ih) (..., 4H): one matmul, one normalisation for every step."""
        return gate_norm(F.linear(x, p["weight_ih"], p["bias_ih"]), p["ln_ih_weight"], p["ln_ih_bias"], 4)

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The base cell's, then b_hh, ln_hh's gain and bias, ln_c's gain and bias: the last five."""
        return super().weights(p) + (p["bias_hh"], p["ln_hh_weight"], p["ln_hh_bias"],
                                     p["ln_c_weight"], p["ln_c_bias"])

    def preactivations(self, xg: torch.Tensor, h: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        b_hh, gain, bias = w[-5:-2]
        return xg + gate_norm(recurrent_matmul(b_hh, h, w[0]), gain, bias, 4)  # (n, 4H)

    def squash(self, c: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.tanh(F.layer_norm(c, c.shape[-1:], w[-2], w[-1]))  # (n, H)


class LayerNormPeepholeLSTMCell(LayerNormLSTMCell, PeepholeLSTMCell):
    """PeepholeLSTMCell's step with LayerNormLSTMCell's normalisation (p * c added after it)."""


class LayerNormWorkingMemoryLSTMCell(LayerNormLSTMCell, WorkingMemoryLSTMCell):
    """WorkingMemoryLSTMCell's step with LayerNormLSTMCell's normalisation (tanh(V c + b_c) added
    after it)."""


class LayerNormGRUCell(GRUCell):
    """The GRU with layer normalisation inside the recurrence, as LayerNormLSTMCell (Ba et al. 2016;
    Nematus's layer-normalised GRU: r multiplies the normalised U_n h + b_hn, as in nn.GRU and in
    Nematus's Theano GRU; its TensorFlow GRU multiplies h by r before U_n):

        (a_r, a_z, a_n) = LN(W x + b_ih; ln_ih),  (u_r, u_z, u_n) = LN(U h + b_hh; ln_hh)
        r = sigmoid(a_r + u_r),  z = sigmoid(a_z + u_z),  n = tanh(a_n + r * u_n)
        h' = (1 - z) * n + z * h

    LN per gate block of H (Nematus normalises r and z as one block of 2H, its W holding both;
    Sockeye all 3H as one, with the biases added after); gains `ln_*_weight` start at 1 and biases
    `ln_*_bias` at 0, (3H,) each.
    """

    initial_values = _NORM_START

    def extra_shapes(self, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return _norm_shapes(3, hidden_size)

    def project(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (..., I) -> LN(W x + b_ih) (..., 3H): one matmul, one normalisation for every step."""
        return gate_norm(F.linear(x, p["weight_ih"], p["bias_ih"]), p["ln_ih_weight"], p["ln_ih_bias"], 3)

    def weights(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return p["weight_hh"].t(), p["bias_hh"], p["ln_hh_weight"], p["ln_hh_bias"]  # (H, 3H), (3H,) x 3

    def recurrent_term(self, h: torch.Tensor, w: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """h (n, H) -> LN(U h + b_hh) (n, 3H)."""
        return gate_norm(recurrent_matmul(w[1], h, w[0]), w[2], w[3], 3)
