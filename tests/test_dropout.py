"""seq2seq/modules/dropout.py: the CPU masks, and nn.GRU / nn.LSTM layer by layer with them."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import seq2seq.modules.dropout as drop
from seq2seq.modules.dropout import LEVELS, Dropout, dropout
from seq2seq.modules.lstm import LSTM
from seq2seq.modules.packed_training import GRU


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masks_keep_one_minus_p_and_scale_by_the_exact_keep_probability(p, dtype):
    torch.manual_seed(0)
    x = torch.ones(1000, 1001, dtype=dtype)  # odd count: the last 64-bit draw is cut
    y = dropout(x, p)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    scale = LEVELS / (LEVELS - round(p * LEVELS))
    assert torch.all(y[kept] == torch.tensor(scale, dtype=dtype))
    # 1e6 draws: the kept fraction's standard deviation is below 5e-4
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=2.5e-3)
    assert y.float().mean().item() == pytest.approx(1.0, abs=5e-3)


def test_lanes_of_one_draw_are_independent():
    """Neighbours share a 64-bit draw: both kept 1/4 of the time at p = 0.5, as independent ones."""
    torch.manual_seed(1)
    kept = dropout(torch.ones(4_000_000), 0.5) != 0
    pairs = kept.view(-1, 4)
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        assert (pairs[:, a] & pairs[:, b]).float().mean().item() == pytest.approx(0.25, abs=2e-3)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(50, 40, requires_grad=True)
    y = dropout(x, 0.4)
    y.backward(torch.ones_like(y))
    kept = y != 0
    scale = LEVELS / (LEVELS - round(0.4 * LEVELS))
    torch.testing.assert_close(x.grad, kept.float() * scale)
    torch.testing.assert_close(y, x.detach() * kept * scale)


def test_the_seed_repeats_the_masks_and_eval_or_p_zero_is_the_input():
    x = torch.ones(300, 7)
    torch.manual_seed(3)
    a = dropout(x, 0.3)
    torch.manual_seed(3)
    b = dropout(x, 0.3)
    c = dropout(x, 0.3)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    module = Dropout(0.3).eval()
    assert module(x) is x
    with pytest.raises(ValueError):
        Dropout(1.5)


def test_without_fast_masks_it_is_torch_dropout(monkeypatch):
    x = torch.randn(20, 30)
    monkeypatch.setattr(drop, "fast_masks", False)
    torch.manual_seed(4)
    a = dropout(x, 0.3)
    torch.manual_seed(4)
    b = F.dropout(x, 0.3, True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [GRU, LSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_by_layer_is_torch_s_stack_with_the_masks_between(cls, bidirectional, monkeypatch):
    """Padded input in training with dropout: one layer at a time. With a dropout that drops nothing
    (p below 1/32768 falls back to F.dropout, which keeps all at that p) it is torch's own
    multi-layer call exactly; with p = 0.5 it drops, and the gradient reaches every parameter."""
    torch.manual_seed(5)
    rnn = cls(6, 8, 3, batch_first=True, dropout=1e-9, bidirectional=bidirectional).train()
    x = torch.randn(4, 5, 6)
    hx = torch.randn(3 * (2 if bidirectional else 1), 4, 8)
    state = (hx, torch.randn_like(hx)) if cls is LSTM else hx
    for h0 in (None, state):
        ours = rnn(x, h0)
        monkeypatch.setattr(drop, "fast_masks", False)
        theirs = rnn(x, h0)
        monkeypatch.setattr(drop, "fast_masks", True)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
        for a, b in zip(*(o[1] if cls is LSTM else (o[1],) for o in (ours, theirs))):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    rnn.dropout = 0.5
    out = rnn(x)[0]
    assert not torch.allclose(out, rnn.eval()(x)[0])
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())


def test_built_models_use_seq2seq_dropout_only():
    from seq2seq.config import ModelConfig
    from seq2seq.tasks.translation.model import build_model
    model = build_model(ModelConfig(), 40, 40)
    assert not [m for m in model.modules() if type(m) is nn.Dropout]
    assert any(isinstance(m, Dropout) for m in model.modules())
