"""seq2seq/modules/gru_sequence.py: a GRU layer and direction over a packed sequence as one autograd
step, checked by float64 gradcheck on ragged rows in both directions, against the loop of GRUCell
steps it replaces (fp32 and CPU bf16 autocast), and where the loop runs instead."""

from __future__ import annotations

import pytest
import torch
from test_cells import randomize
from test_recurrence import LENGTHS, bf16_autocast, inputs, run

import seq2seq.modules.gru_sequence as gru_sequence
from seq2seq.modules.cells import GRUCell, LayerNormGRUCell
from seq2seq.modules.recurrence import Recurrence

SIZES = [4, 3, 3, 1]  # packed rows a step: rows end after steps 1, 3 and 4


def operands(seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = ((sum(SIZES), 9), (4, 3), (3, 9), (9,))  # xg, h0, U^T, b_hn
    return [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck_in_float64_on_ragged_rows(reverse):
    def both(xg, h0, weight, bias):
        return gru_sequence.run(xg, SIZES, h0, weight, bias, reverse)

    assert torch.autograd.gradcheck(both, operands())


@pytest.mark.parametrize("reverse", [False, True])
def test_final_state_is_each_rows_last_output(reverse):
    xg, h0, weight, bias = operands(1)
    out, final = gru_sequence.run(xg, SIZES, h0, weight, bias, reverse)
    rows = out.split(SIZES)
    if reverse:
        torch.testing.assert_close(final, rows[0], rtol=0, atol=0)
    else:  # rows 3, then 1 and 2, then 0 end after steps 1, 3 and 4
        torch.testing.assert_close(final, torch.stack([rows[3][0], rows[2][1], rows[2][2], rows[0][3]]),
                                   rtol=0, atol=0)


def gru(seed=4):
    return randomize(Recurrence(GRUCell(), 5, 4, 2, True, bidirectional=True), seed)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_same_as_the_loop_of_steps(precision, monkeypatch):
    """Two layers, both directions, unsorted lengths: outputs, final states and every gradient as
    the loop's (fp32: to rounding; bf16: the same bf16 matmuls, to its rounding)."""
    rnn, args = gru(), inputs(torch.float32, 1, seed=3)
    calls = []
    real = gru_sequence.run
    monkeypatch.setattr(gru_sequence, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    with bf16_autocast() if precision == "bf16" else torch.autocast("cpu", enabled=False):
        fused = run(rnn, "packed", *args)
        monkeypatch.setattr(gru_sequence, "fused", False)
        loop = run(rnn, "packed", *args)
    assert len(calls) == 4  # every layer and direction, and not with fused off
    tolerance = {"fp32": 1e-5, "bf16": 2e-2}[precision]
    for a, b in zip([fused[0], *fused[1], *fused[2]], [loop[0], *loop[1], *loop[2]]):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)


def test_the_loop_runs_without_gradients_for_padded_input_and_other_cells(monkeypatch):
    calls = []
    monkeypatch.setattr(gru_sequence, "run", lambda *a, **k: calls.append(1))
    x = inputs(torch.float32, 1)[0]
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        gru()(packed)
    gru()(x)  # padded
    randomize(Recurrence(LayerNormGRUCell(), 5, 4, 1, True), 4)(packed)
    assert calls == []
