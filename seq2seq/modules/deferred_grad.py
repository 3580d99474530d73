"""A weight's gradient as one matmul over all the steps of a loop, not one per step.

In a recurrence h_t = cell(x_t, h_{t-1} @ W) autograd computes W's gradient at every step, a
(H x n) @ (n x G*H) matmul with n the batch's rows, and sums the T results one by one. Those
matmuls are small and many (Multi30k's encoder: 66 a training step; DialogSum's: 1,280 of 28 rows
each) and each sum is another pass over W. The whole gradient is one product,
[h_0; ...; h_{T-1}]^T @ [g_1; ...; g_T], of the states each step multiplied and the gradients
that came back to each step's product.

The same holds for a batch of matrices: a teacher-forced decoder's context at step t is
weights_t (B, 1, S) @ values (B, S, H), and autograd makes the values' gradient as T outer
products (B, S, 1) @ (B, 1, H), each a tensor of the values' size added to the sum (DialogSum: 42
of 18 x 320 x 256 a batch). Deferred, it is one (B, S, T) @ (B, T, H) matmul.

`DeferredWeight` wraps W for one layer and direction of `recur` (recurrence.py), or the values of
one teacher-forced loop (decoder.Memory.for_steps). Each step's product is a `_StepMatmul`:
forward `x @ W`; backward x's gradient `g @ W^T`, and it keeps (x, g). The backward that completes
the set (in a recurrence, the first step's: every later step's state comes from its output)
returns W's gradient for them all: one matmul, summed in the matmul's own accumulator (fp32 for
bf16 operands) where autograd would round a bf16 sum at each step. So every step's product must
reach the loss, as in these loops, where each step's output is part of the result.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class DeferredWeight:
    """W (H, K), or a batch of them (B, H, K); `matmul(x)` is x @ W for x (n, H) or (B, n, H), one
    call per step. Every step's product must reach the loss: W's gradient is returned by the
    backward that completes the set of steps, whichever runs last."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight
        self.calls = 0
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x, gradient) of each step's backward

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return _StepMatmul.apply(x, self.weight, self)


class _StepMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, deferred):
        ctx.save_for_backward(x, weight)
        ctx.deferred = deferred
        with torch.autocast(x.device.type, enabled=False):  # the operands' own dtype, as the backward
            return torch.matmul(x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        deferred = ctx.deferred
        grad_x = torch.matmul(grad, weight.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            deferred.kept.append((x, grad))
            if len(deferred.kept) == deferred.calls:  # every step is in
                xs, grads = zip(*deferred.kept)
                deferred.kept.clear()
                grad_weight = torch.matmul(torch.cat(xs, -2).transpose(-1, -2), torch.cat(grads, -2))
        return grad_x, grad_weight, None
