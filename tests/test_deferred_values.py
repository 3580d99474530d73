"""The attention values' gradient in one matmul over a teacher-forced loop (decoder.Memory.for_steps,
deferred_grad.py): the same gradients as autograd's per-step sum, in float64, for the decoders that
run one step at a time; the wrapping rules."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from seq2seq.modules.attention import BahdanauAttention, LuongGeneralAttention
from seq2seq.modules.conditional import ConditionalDecoder
from seq2seq.modules.decoder import Memory, RecurrentDecoder
from seq2seq.modules.deferred_grad import DeferredWeight


def decoder(kind: str):
    torch.manual_seed(0)
    if kind == "conditional":  # without input feeding: its own loop
        att = BahdanauAttention(6, 4, 5, coverage=True)
        return ConditionalDecoder("gru", 3, 6, 0.0, att, 4, False, "bridge").double()
    att = BahdanauAttention(6, 4, 5, coverage=True) if kind == "coverage" else LuongGeneralAttention(6, 4)
    return RecurrentDecoder("gru", 3, 6, 2, 0.0, att, 4, True, "bridge").double()


def gradients(dec, values, embedded, mask):
    memory = Memory(values, dec.attention.prepare_keys(values), mask)
    att, weights, _ = dec(embedded, memory, dec.init_state(values.mean(1)))
    loss = (att * torch.linspace(-1, 1, att.numel(), dtype=att.dtype).view_as(att)).sum() + weights[..., 0].sum()
    return torch.autograd.grad(loss, [values, embedded, *dec.parameters()], allow_unused=True)


@pytest.mark.parametrize("kind", ["coverage", "general", "conditional"])
def test_the_same_gradients_as_per_step(kind):
    dec = decoder(kind)
    g = torch.Generator().manual_seed(1)
    values = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    embedded = torch.randn(3, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False]])
    wrapped = []
    real = Memory.for_steps

    def spy(memory, steps):
        out = real(memory, steps)
        wrapped.append(isinstance(out.values, DeferredWeight))
        return out

    with mock.patch.object(Memory, "for_steps", spy):
        deferred = gradients(dec, values, embedded, mask)
    assert wrapped == [True]
    with mock.patch.object(Memory, "for_steps", lambda memory, steps: memory):
        per_step = gradients(dec, values, embedded, mask)
    assert deferred[0].abs().sum() > 0
    for a, b in zip(deferred, per_step):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_wrapped_only_for_a_loop_with_gradients():
    values = torch.randn(2, 3, 4, requires_grad=True)
    memory = Memory(values, values, torch.ones(2, 3, dtype=torch.bool))
    assert memory.for_steps(1) is memory
    with torch.no_grad():
        assert memory.for_steps(5) is memory
    assert Memory(values.detach(), values, memory.mask).for_steps(5).values is not None
    assert not isinstance(Memory(values.detach(), values, memory.mask).for_steps(5).values, DeferredWeight)
    wrapped = memory.for_steps(5)
    assert isinstance(wrapped.values, DeferredWeight) and wrapped.values.weight is values
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert memory.for_steps(5).values.dtype == torch.bfloat16  # cast once, as autocast's bmm would


def test_any_order_of_the_steps_backward():
    """Steps that do not feed each other: the sum is returned by whichever backward completes it."""
    w = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    xs = [torch.randn(2, 1, 4, dtype=torch.float64) for _ in range(5)]
    deferred = DeferredWeight(w)
    outs = [deferred.matmul(x) for x in xs]
    (torch.cat(outs, 1) * torch.arange(15.0, dtype=torch.float64).view(1, 5, 3)).sum().backward()
    want = sum(x.transpose(1, 2) @ torch.arange(3 * t, 3 * t + 3, dtype=torch.float64).view(1, 1, 3).expand(2, 1, 3)
               for t, x in enumerate(xs))
    torch.testing.assert_close(w.grad, want)
    assert deferred.kept == []
