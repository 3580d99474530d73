"""The additive attention's scores v^T tanh(q + k) in one autograd step, on CPU fp32 tensors.

Additive attention (Bahdanau; Luong's concat) makes at every decoder step the largest tensor of the
step, the energies (B, T, S, A): batch x decoder steps x source length x attention size. Written
as tanh, then nn.Linear(A, 1), that tensor is passed over again and again: the broadcast add, the
tanh (through sigmoid, tanh.py: four passes), the product with v; backward, v's outer product
with the scores' gradient (a matmul with inner size 1, slow for its size), tanh's backward, and
v's gradient. Here, with tanh(x) = 2 sigmoid(2x) - 1,

    score = v^T tanh(q + k) = 2 v^T s - sum(v),  s = sigmoid(2q + 2k)

forward makes s in two passes (the add, sigmoid in place) and reads it once (s @ v); it keeps s
alone. Backward, with g the scores' gradient and tanh' = 4 s (1 - s):

    u = g s (1 - s)          (B, T, S, A): two passes, one new tensor
    dq = 4 v * sum_S u,  dk = 4 v * sum_T u (u itself when T = 1, scaled in place),
    dv = 2 s^T g - sum(g)    (one read of s)

The same figures as tanh then Linear to fp32 rounding (tests/test_additive.py). Other dtypes (bf16
autocast makes q and k bf16), other devices, code under torch.compile (which fuses the plain
expression itself), a layer other than a bias-free nn.Linear (int8 decoding's quantised one) and
`fused = False` get the plain expression.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from seq2seq.modules.tanh import tanh

fused = True  # False: tanh then the product with v, as written (tools/baselines.py: baseline=unfused_scores)


def additive_scores(q: torch.Tensor, keys: torch.Tensor, energy_layer: nn.Linear) -> torch.Tensor:
    """q (B, T, A), keys (B, S, A), energy_layer nn.Linear(A, 1) without bias (v) -> v^T tanh(q + k)
    for every query and key, (B, T, S)."""
    if (not fused or torch.compiler.is_compiling() or q.device.type != "cpu"
            or type(energy_layer) is not nn.Linear or energy_layer.bias is not None
            or not q.dtype == keys.dtype == energy_layer.weight.dtype == torch.float32):
        energy = tanh(q.unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        return energy_layer(energy).squeeze(-1)
    return _AdditiveScores.apply(q, keys, energy_layer.weight)


class _AdditiveScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, keys, v):
        s = torch.add(torch.mul(q, 2.0).unsqueeze(2), keys.unsqueeze(1), alpha=2.0).sigmoid_()
        v = v.reshape(-1)  # (A,)
        ctx.save_for_backward(s, v)
        # products with v as matmuls (not mv: torch's FLOP counter sees these, and they are as fast)
        return torch.matmul(s, (v * 2.0).unsqueeze(1)).squeeze(-1).sub_(v.sum())  # (B, T, S)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        s, v = ctx.saved_tensors  # (B, T, S, A), (A,)
        need_q, need_k, need_v = ctx.needs_input_grad
        grad_q = grad_k = grad_v = None
        if need_v:
            flat = s.view(-1, s.size(-1))
            grad_v = torch.mm(grad.reshape(1, -1), flat).mul_(2.0).sub_(grad.sum())  # (1, A)
        if need_q or need_k:
            u = torch.mul(s, grad.unsqueeze(-1))
            u.addcmul_(u, s, value=-1.0)  # g s (1 - s)
            v4 = v * 4.0
            if need_q:
                grad_q = u.sum(2).mul_(v4)  # (B, T, A)
            if need_k:
                grad_k = (u.squeeze(1) if u.size(1) == 1 else u.sum(1)).mul_(v4)  # (B, S, A)
        return grad_q, grad_k, grad_v
