"""The recurrent weight's gradient as one matmul over all steps, not one per step.

In a recurrence h_t = cell(x_t, h_{t-1} @ W) autograd computes W's gradient at every step, a
(H x n) @ (n x G*H) matmul with n the batch's rows, and sums the T results one by one. Those
matmuls are small and many (Multi30k's encoder: 66 a training step; DialogSum's: 1,280 of 28 rows
each) and each sum is another pass over W. The whole gradient is one product,
[h_0; ...; h_{T-1}]^T @ [g_1; ...; g_T], of the states each step multiplied and the gradients
that came back to each step's product.

`DeferredWeight` wraps W for one layer and direction of `recur` (recurrence.py). Each step's
product is a `_StepMatmul`: forward `state @ W`; backward the state's gradient `g @ W^T`, and it
keeps (state, g). The step that ran first in the forward pass is the last one whose
backward runs (every later step's state comes from its output), so there all the steps' pairs
are kept, and it returns W's gradient for them all: one matmul, summed in the matmul's own
accumulator (fp32 for bf16 operands) where autograd would round a bf16 sum at each step.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class DeferredWeight:
    """W (H, K) of one layer and direction; `matmul(state)` is state @ W, one call per step."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight
        self.calls = 0
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # (state, gradient) of each step's backward

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    def matmul(self, state: torch.Tensor) -> torch.Tensor:
        step, self.calls = self.calls, self.calls + 1
        return _StepMatmul.apply(state, self.weight, self, step)


class _StepMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, state, weight, deferred, step):
        ctx.save_for_backward(state, weight)
        ctx.deferred, ctx.step = deferred, step
        return torch.mm(state, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        state, weight = ctx.saved_tensors
        deferred = ctx.deferred
        grad_state = torch.mm(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            deferred.kept.append((state, grad))
            if ctx.step == 0:  # the last backward of this layer and direction: all steps are in
                states, grads = zip(*deferred.kept)
                deferred.kept.clear()
                grad_weight = torch.mm(torch.cat(states).t(), torch.cat(grads))
        return grad_state, grad_weight, None, None
