"""tanh as 2 * sigmoid(2x) - 1 on CPU fp32 tensors: torch's CPU tanh is several times slower than
its sigmoid.

Measured on a 2-core AMD EPYC Zen 3 (AVX2), fp32, (18, 1, 320, 256), the additive attention's
energies at one DialogSum decoder step: torch.tanh 2.35 ms, this 0.94 ms (README, Performance).
The energies tanh(W q + U k) of additive attention are the largest tensors a decoder step makes
(batch x source length x attention size), so the attention's share of a training step shrinks, and
beam search's with it.

The identity is exact; in fp32 the result is within 2e-7 of torch.tanh (the rounding of sigmoid
near 1/2, doubled), where torch.tanh's own error is 3e-8 against float64. The gradient is
torch's tanh_backward, grad * (1 - y^2), from the result y, as autograd's tanh. Other devices and
dtypes (bf16, whose rounding of sigmoid near 1/2 would lose what bf16 tanh keeps near 0), code
under torch.compile (which fuses tanh itself) and `by_sigmoid = False` get torch.tanh.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

by_sigmoid = True  # False: torch.tanh everywhere (tools/baselines.py: baseline=torch_tanh)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """torch.tanh(x), computed through sigmoid on CPU fp32 tensors."""
    if not by_sigmoid or x.dtype != torch.float32 or x.device.type != "cpu" or torch.compiler.is_compiling():
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return _through_sigmoid(x)


def _through_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.mul(x, 2.0).sigmoid_().mul_(2.0).sub_(1.0)  # one new tensor, the rest in place


class _Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = _through_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)
