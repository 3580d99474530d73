"""seq2seq/modules/gru_gates.py: the GRU step's gates in one autograd step, against the operators
through autograd (float64 gradcheck and equality), and where the operators run as written."""

from __future__ import annotations

import pytest
import torch

import seq2seq.modules.gru_gates as gru_gates_module
from seq2seq.modules.gru_gates import gru_gates, plain


def operands(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    xg, hg, h = (torch.randn(shape, generator=g, dtype=dtype) for shape in ((4, 9), (4, 9), (4, 3)))
    return xg.requires_grad_(), hg.requires_grad_(), h.requires_grad_()


def test_gradcheck_in_float64():
    assert torch.autograd.gradcheck(gru_gates, operands())


@pytest.mark.parametrize("which", [0, 1, 2])
def test_the_same_as_the_operators_through_autograd(which):
    """Outputs and all three gradients, with one input at a time not asking for a gradient."""
    xg, hg, h = operands(torch.float32, seed=3)
    inputs = [xg, hg, h]
    inputs[which].requires_grad_(False)
    grad = torch.randn(4, 3, generator=torch.Generator().manual_seed(4))
    fused = gru_gates(*inputs)
    assert "GRUGates" in type(fused.grad_fn).__name__
    want = plain(*inputs)[0]
    got_grads = torch.autograd.grad(fused, [t for t in inputs if t.requires_grad], grad)
    want_grads = torch.autograd.grad(want, [t for t in inputs if t.requires_grad], grad)
    torch.testing.assert_close(fused, want, rtol=0, atol=0)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_without_gradients_or_switched_off_the_operators_run(monkeypatch):
    xg, hg, h = operands()
    with torch.no_grad():
        assert gru_gates(xg, hg, h).grad_fn is None
    monkeypatch.setattr(gru_gates_module, "fused", False)
    out = gru_gates(xg, hg, h)
    assert "GRUGates" not in type(out.grad_fn).__name__
    assert torch.equal(out, plain(xg, hg, h)[0])
