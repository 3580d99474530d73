"""One layer and direction of a GRU over a whole packed sequence as one autograd step.

The encoders train their packed input on `recur`'s loop (recurrence.py, packed_training.py), one
`GRUCell.step` per time step: a recurrent matmul and the gates (gru_gates.py), each step a few
autograd nodes whose backward the engine runs one by one, with Python in two of them. DialogSum's
encoder runs 640 such steps a batch (320 pieces, two directions) on about 28 rows of 128, where
the nodes' cost, not the arithmetic, is most of the loop's. Here the forward runs the same steps
without a graph, each writing into buffers of the whole sequence, and the backward runs the steps
back in one Python loop, a dozen operators a step:

    forward   hg = U h + b_hn,  r, z = sigmoid(xg_rz + hg_rz),  n = tanh(xg_n + r * hg_n),
              h' = n + z * (h - n)
    backward  g: h' 's gradient (the output's, the next step's, the final state's),
              dn = (1 - n^2) g (1 - z),  d(r, z) = (dn hg_n, g (h - n)) r,z (1 - r,z),
              dxg = (d(r, z), dn),  dhg = (d(r, z), dn r),  dh = g z + dhg U^T

and U's gradient is one matmul over all steps, [h_0; ...]^T @ [dhg_0; ...] (deferred_grad.py's
idea without its per-step nodes). The packed layout's ragged rows are handled as the loop does:
rows that end (left to right) leave the state, and their final state's gradient joins at their
last step; rows that begin (right to left) join from the initial state.

`takes` says when it runs: GRUCell itself (not a subclass), packed CPU input with gradients,
outside torch.compile, with `fused` on; everything else runs the loop. Under CPU bf16 autocast
the matrix is bf16 (`recur` casts it) and the state and gates fp32, as the loop's
`recurrent_matmul`: the matmuls take the state and gradient cast to bf16.
"""

from __future__ import annotations

import itertools

import torch
from torch.autograd.function import once_differentiable

from seq2seq.modules.cells import GRUCell

fused = True  # False: the loop of GRUCell steps (tools/baselines.py: baseline=stepwise_gru)


def takes(cell, packed: bool, xg: torch.Tensor, weights: tuple[torch.Tensor, ...]) -> bool:
    """Whether `run` replaces the loop for one layer and direction: xg its input projection,
    weights `cell.weights`'s."""
    return (fused and packed and type(cell) is GRUCell and xg.device.type == "cpu"
            and torch.is_grad_enabled() and not torch.compiler.is_compiling()
            and (xg.requires_grad or any(w.requires_grad for w in weights)))


def run(xg: torch.Tensor, sizes: list[int], h0: torch.Tensor, weight: torch.Tensor,
        bias: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """xg (N, 3H): every step's input projection, packed (time-major, sizes[t] rows at step t,
    not increasing); h0 (B, H); weight U^T (H, 3H); bias (3H,), b_hn in the n part -> the outputs
    (N, H) packed as xg, and each row's final state (B, H): after its last token, or its first
    when `reverse` (each row then starts at its own last token, from h0)."""
    return _GRUSequence.apply(xg, h0, weight, bias, sizes, reverse)


_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # writing into a given tensor
_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input


def _offsets(sizes: list[int]) -> list[int]:
    """Each step's first row in the packed layout."""
    return [0, *itertools.accumulate(sizes)][:-1]


def _matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight in the weight's dtype, the result in x's (fp32 for a bf16 weight)."""
    return torch.mm(x.to(weight.dtype), weight).to(x.dtype)


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xg, h0, weight, bias, sizes, reverse):
        hidden, steps = h0.size(1), len(sizes)
        offsets = _offsets(sizes)
        out = xg.new_empty(xg.size(0), hidden)
        hg = xg.new_empty(xg.shape)  # U h + b_hn of every step (the backward reads its n part)
        r_z = xg.new_empty(xg.size(0), 2 * hidden)
        n_all = xg.new_empty(xg.size(0), hidden)
        prev = xg.new_empty(xg.size(0), hidden)  # the state each step read
        same = weight.dtype == xg.dtype
        h = h0[:sizes[-1 if reverse else 0]]
        for t in (reversed(range(steps)) if reverse else range(steps)):
            rows, o = sizes[t], offsets[t]
            if h.size(0) < rows:  # right to left: rows begin here, from h0
                h = torch.cat([h, h0[h.size(0):rows]])
            elif h.size(0) > rows:  # left to right: rows have ended
                h = h[:rows]
            prev[o:o + rows] = h
            hg_t, x_t = hg[o:o + rows], xg[o:o + rows]
            if same:
                torch.addmm(bias, h, weight, out=hg_t)
            else:
                torch.add(bias, _matmul(h, weight), out=hg_t)
            rz = torch.sigmoid(x_t[:, :2 * hidden] + hg_t[:, :2 * hidden], out=r_z[o:o + rows])
            n = torch.tanh(torch.addcmul(x_t[:, 2 * hidden:], rz[:, :hidden], hg_t[:, 2 * hidden:]),
                           out=n_all[o:o + rows])
            h = torch.lerp(n, h, rz[:, hidden:], out=out[o:o + rows])
        # left to right, each row's final state is its output at its last step
        last = None if reverse else _last_positions(sizes, offsets)
        final = h.clone() if reverse else out[last]
        ctx.save_for_backward(weight, hg, r_z, n_all, prev)
        ctx.sizes, ctx.offsets, ctx.last, ctx.reverse = sizes, offsets, last, reverse
        return out, final

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_final):
        weight, hg, r_z, n_all, prev = ctx.saved_tensors
        sizes, offsets, reverse = ctx.sizes, ctx.offsets, ctx.reverse
        hidden, steps = prev.size(1), len(sizes)
        weight_t = weight.t()
        same = weight.dtype == grad_out.dtype
        dxg, dhg = grad_out.new_empty(hg.shape), grad_out.new_empty(hg.shape)
        grad_h0 = grad_out.new_empty(sizes[0], hidden)
        g_all = grad_out.clone()  # each step's output gradient, plus what joins it below
        if reverse:  # every row's final state is its output at step 0
            g_all[:sizes[0]] += grad_final
        else:
            g_all.index_add_(0, ctx.last, grad_final)
        carry = None  # the state's gradient from the step the forward ran after this one
        for t in (range(steps) if reverse else reversed(range(steps))):
            rows, o = sizes[t], offsets[t]
            g = g_all[o:o + rows]
            if carry is not None:
                g[:carry.size(0)] += carry
            rz, n = r_z[o:o + rows], n_all[o:o + rows]
            g_z = g * rz[:, hidden:]
            dn = _tanh_backward(g - g_z, n, grad_input=dxg[o:o + rows, 2 * hidden:])
            d = dhg[o:o + rows]
            torch.mul(dn, hg[o:o + rows, 2 * hidden:], out=d[:, :hidden])
            torch.mul(g, prev[o:o + rows] - n, out=d[:, hidden:2 * hidden])
            _sigmoid_backward(d[:, :2 * hidden], rz, grad_input=d[:, :2 * hidden])  # in place
            torch.mul(dn, rz[:, :hidden], out=d[:, 2 * hidden:])
            dh = torch.addmm(g_z, d, weight_t) if same else g_z + _matmul(d, weight_t)
            if reverse:  # rows that began here read h0; the rest the step before (t + 1)
                before = sizes[t + 1] if t + 1 < steps else 0
                grad_h0[before:rows] = dh[before:]
                carry = dh[:before]
            elif t == 0:
                grad_h0 = dh
            else:
                carry = dh
        dxg[:, :2 * hidden] = dhg[:, :2 * hidden]
        grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_weight = torch.mm(prev.to(weight.dtype).t(), dhg.to(weight.dtype))
        grad_bias = dhg.sum(0) if ctx.needs_input_grad[3] else None
        return dxg, grad_h0, grad_weight, grad_bias, None, None


def _last_positions(sizes: list[int], offsets: list[int]) -> torch.Tensor:
    """Row i's position in the packed layout at its last step, for every row i."""
    positions = [0] * sizes[0]
    for t, rows in enumerate(sizes):
        for row in range(sizes[t + 1] if t + 1 < len(sizes) else 0, rows):
            positions[row] = offsets[t] + row
    return torch.tensor(positions, dtype=torch.long)
