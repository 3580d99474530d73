"""The GRU step's gate arithmetic as one autograd step (GRUCell and LayerNormGRUCell in cells.py).

Given the input's and the state's parts of every gate, xg and hg (n, 3H) (hg = U h + b_hh, or its
layer norm), and the state h (n, H):

    r, z = sigmoid(xg_rz + hg_rz),  n = tanh(xg_n + r * hg_n),  h' = n + z * (h - n)

Written with torch's operators, a step's backward is a dozen autograd nodes, six of them slices
of xg, hg and (r, z), each a zero-filled tensor of the whole that the gradient is copied into and
then added; on small rows (DialogSum's encoder: 18 rows of 128) the nodes' overhead, not the
arithmetic, is the cost. Here the forward is the same operators without a graph, and the backward
writes the three gradients directly:

    dn = g (1 - z),  dh = g z,  da_n = dn (1 - n^2)
    da_r = da_n hg_n r (1 - r),  da_z = g (h - n) z (1 - z)
    dxg = [da_r, da_z, da_n],  dhg = [da_r, da_z, da_n r]

The encoders' GRU over packed input trains on gru_sequence.py instead (a layer and direction of
such steps as one autograd step); these gates serve the loop's other GRU steps (the layer-norm
GRU, padded input). Without gradients (decoding, validation), on other devices, under
torch.compile and with `fused = False` the operators run as written (`plain`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

fused = True  # False: the operators through autograd (tools/baselines.py: baseline=unfused_gru)


def gru_gates(xg: torch.Tensor, hg: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """xg, hg (n, 3H), h (n, H) -> h' (n, H)."""
    if (fused and torch.is_grad_enabled() and h.device.type == "cpu" and not torch.compiler.is_compiling()
            and (xg.requires_grad or hg.requires_grad or h.requires_grad)):
        return _GRUGates.apply(xg, hg, h)
    return plain(xg, hg, h)[0]


def plain(xg: torch.Tensor, hg: torch.Tensor, h: torch.Tensor):
    """h', and what the backward keeps: r and z side by side (n, 2H), n (n, H)."""
    hidden = h.size(1)
    r_z = torch.sigmoid(xg[:, :2 * hidden] + hg[:, :2 * hidden])  # (n, 2H)
    n = torch.tanh(torch.addcmul(xg[:, 2 * hidden:], r_z[:, :hidden], hg[:, 2 * hidden:]))
    return torch.lerp(n, h, r_z[:, hidden:]), r_z, n  # n + z * (h - n)


class _GRUGates(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xg, hg, h):
        h_new, r_z, n = plain(xg, hg, h)
        ctx.save_for_backward(hg, h, r_z, n)
        return h_new

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        hg, h, r_z, n = ctx.saved_tensors
        hidden = h.size(1)
        r, z = r_z[:, :hidden], r_z[:, hidden:]
        grad_h = grad * z
        grad_n = torch.ops.aten.tanh_backward(grad - grad_h, n)  # through n's tanh
        grad_r_z = torch.cat([grad_n * hg[:, 2 * hidden:], grad * (h - n)], 1)
        grad_r_z = torch.ops.aten.sigmoid_backward(grad_r_z, r_z)  # through r's and z's sigmoid
        grad_xg = torch.cat([grad_r_z, grad_n], 1) if ctx.needs_input_grad[0] else None
        grad_hg = torch.cat([grad_r_z, grad_n * r], 1) if ctx.needs_input_grad[1] else None
        return grad_xg, grad_hg, grad_h
