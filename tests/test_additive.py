"""seq2seq/modules/additive.py: the additive scores v^T tanh(q + k) in one autograd step on CPU fp32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import seq2seq.modules.additive as additive
from seq2seq.modules.additive import additive_scores
from seq2seq.modules.attention import BahdanauAttention
from seq2seq.modules.tanh import tanh


def operands(steps: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(3, steps, 8, generator=g).requires_grad_()
    keys = torch.randn(3, 5, 8, generator=g).requires_grad_()
    layer = nn.Linear(8, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(1, 8, generator=g))
    return q, keys, layer


def float64_reference(q, keys, layer, grad):
    q64, k64 = q.detach().double().requires_grad_(), keys.detach().double().requires_grad_()
    v64 = layer.weight.detach().double().requires_grad_()
    scores = (torch.tanh(q64.unsqueeze(2) + k64.unsqueeze(1)) @ v64.t()).squeeze(-1)
    scores.backward(grad.double())
    return scores, q64.grad, k64.grad, v64.grad


@pytest.mark.parametrize("steps", [1, 4])
def test_scores_and_gradients_as_float64(steps):
    """One decoder step (T = 1: the keys' gradient is u itself) and four at once."""
    q, keys, layer = operands(steps)
    scores = additive_scores(q, keys, layer)
    assert scores.shape == (3, steps, 5) and scores.dtype == torch.float32
    assert "AdditiveScores" in type(scores.grad_fn).__name__
    grad = torch.randn(scores.shape, generator=torch.Generator().manual_seed(1))
    scores.backward(grad)
    ref = float64_reference(q, keys, layer, grad)
    for got, want in zip((scores, q.grad, keys.grad, layer.weight.grad), ref):
        torch.testing.assert_close(got.double(), want, rtol=0, atol=5e-6)


def test_the_same_as_the_plain_expression(monkeypatch):
    q, keys, layer = operands(3)
    grad = torch.randn(3, 3, 5)
    runs = []
    for fused in (True, False):
        monkeypatch.setattr(additive, "fused", fused)
        for p in (q, keys, layer.weight):
            p.grad = None
        scores = additive_scores(q, keys, layer)
        scores.backward(grad)
        runs.append((scores.detach(), q.grad, keys.grad, layer.weight.grad))
    assert "AdditiveScores" not in type(scores.grad_fn).__name__  # the last run: the plain way
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=2e-6)


def test_only_the_gradients_asked_for():
    q, keys, layer = operands(1)
    keys.requires_grad_(False)
    layer.weight.requires_grad_(False)
    additive_scores(q, keys, layer).sum().backward()
    assert q.grad is not None and keys.grad is None and layer.weight.grad is None


def test_without_gradients_and_inputs_untouched():
    q, keys, layer = operands(2)
    before = (q.detach().clone(), keys.detach().clone())
    with torch.no_grad():
        scores = additive_scores(q, keys, layer)
    with torch.no_grad():
        want = layer(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
    torch.testing.assert_close(scores, want, rtol=0, atol=2e-6)
    assert torch.equal(q, before[0]) and torch.equal(keys, before[1])


@pytest.mark.parametrize("case", ["float64", "bf16", "bias"])
def test_other_dtypes_and_a_biased_layer_take_the_plain_way(case):
    q, keys, layer = operands(2)
    if case == "bias":
        layer = nn.Linear(8, 1)
    else:
        dtype = torch.float64 if case == "float64" else torch.bfloat16
        q, keys, layer = q.detach().to(dtype), keys.detach().to(dtype), layer.to(dtype)
    with torch.no_grad():
        scores = additive_scores(q, keys, layer)
        want = layer(tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # tanh.py's
    assert torch.equal(scores, want)


def test_bahdanau_attention_with_coverage_learns_through_it():
    """The coverage term joins the keys: its weight gets a gradient, the rows still sum to 1."""
    torch.manual_seed(0)
    att = BahdanauAttention(6, 4, 8, coverage=True)
    values = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    context, weights = att(torch.randn(2, 1, 6), att.prepare_keys(values), values, mask, torch.rand(2, 5))
    (context.sum() + weights[:, :, 0].sum()).backward()
    assert att.coverage_layer.weight.grad.abs().sum() > 0 and att.energy_layer.weight.grad.abs().sum() > 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1))
    assert weights[1, 0, 3:].eq(0).all()
