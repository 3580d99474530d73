"""seq2seq/modules/tanh.py: tanh through sigmoid on CPU fp32, torch.tanh elsewhere."""

from __future__ import annotations

import pytest
import torch

import seq2seq.modules.additive as additive
import seq2seq.modules.tanh as tanh_module
from seq2seq.modules.attention import BahdanauAttention
from seq2seq.modules.tanh import tanh


def test_values_within_2e_7_of_float64_tanh():
    x = torch.cat([torch.linspace(-12, 12, 200_001), torch.tensor([0.0, -0.0, 1e-30, -1e-6, 40.0, -88.0, 1e4])])
    got = tanh(x)
    assert got.dtype == torch.float32
    assert (got.double() - torch.tanh(x.double())).abs().max().item() <= 2e-7
    assert got.abs().max().item() <= 1.0
    assert got[x >= 20].eq(1.0).all() and got[x <= -20].eq(-1.0).all()


def test_infinities_and_nan_as_torch():
    x = torch.tensor([float("inf"), float("-inf"), float("nan")])
    got = tanh(x)
    assert got[:2].tolist() == [1.0, -1.0] and got[2].isnan()


def test_gradient_is_one_minus_the_square_of_the_result():
    x = torch.randn(7, 3, 5, requires_grad=True)
    g = torch.randn(7, 3, 5)
    y = tanh(x)
    y.backward(g)
    assert y.grad_fn is not None and "Tanh" in type(y.grad_fn).__name__
    torch.testing.assert_close(x.grad, g * (1 - y.detach() ** 2), rtol=1e-6, atol=1e-7)
    x2 = x.detach().clone().requires_grad_()
    torch.tanh(x2).backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-6)


def test_the_input_is_left_as_it_was():
    x = torch.randn(4, 6)
    before = x.clone()
    tanh(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_dtypes_are_torch_tanh(dtype):
    x = torch.randn(50).to(dtype)
    assert torch.equal(tanh(x), torch.tanh(x))


def test_switched_off_it_is_torch_tanh(monkeypatch):
    monkeypatch.setattr(tanh_module, "by_sigmoid", False)
    x = torch.randn(1000)
    assert torch.equal(tanh(x), torch.tanh(x))


def test_additive_attention_scores_as_with_torch_tanh(monkeypatch):
    """The scores as tanh then v (additive.py's fused step off): the same with either tanh."""
    monkeypatch.setattr(additive, "fused", False)
    torch.manual_seed(0)
    att = BahdanauAttention(16, 12, 8)
    values, query = torch.randn(3, 9, 12), torch.randn(3, 4, 16, requires_grad=True)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    runs = []
    for fast in (True, False):
        monkeypatch.setattr(tanh_module, "by_sigmoid", fast)
        query.grad = None
        att.zero_grad()
        context, weights = att(query, att.prepare_keys(values), values, mask)
        (context.square().sum() + weights[:, :, 0].sum()).backward()
        runs.append((context.detach(), weights.detach(), query.grad.clone(), att.energy_layer.weight.grad.clone()))
    for fast, slow in zip(*runs):
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=2e-6)
    assert runs[0][1][1, :, 6:].eq(0).all()
