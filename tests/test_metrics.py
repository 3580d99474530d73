"""Metrics through sacreBLEU: pinned scores, and the signature that says how they were computed."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.loss import sequence_nll
from seq2seq.tasks.translation.metric import bleu, chrf

HYPS = ["The cat sat on the mat.", "A dog runs in the park today.", "It is raining, isn't it?"]
REFS = ["The cat sat on the red mat.", "A dog is running in the park.", "It is raining, isn't it?"]


def test_bleu_pinned_value_and_signature():
    score, signature = bleu(HYPS, REFS)
    assert score == pytest.approx(61.70742, abs=1e-4)
    assert "tok:13a" in signature and "case:mixed" in signature and "nrefs:1" in signature


def test_bleu_is_cased():
    score, _ = bleu([h.lower() for h in HYPS], REFS)
    assert score == pytest.approx(47.33685, abs=1e-4)


def test_bleu_bounds():
    assert bleu(REFS, REFS)[0] == pytest.approx(100.0)
    assert bleu(["xyz qq"] * 3, REFS)[0] == pytest.approx(0.0)


def test_chrf_pinned_value_and_signature():
    score, signature = chrf(HYPS, REFS)
    assert score == pytest.approx(70.88495, abs=1e-4)
    assert "nc:6" in signature and "nw:0" in signature


def test_sequence_nll_sums_over_real_tokens():
    rows = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]
    logits = torch.log(torch.tensor(rows)).view(2, 2, 3)  # already normalised
    targets = torch.tensor([[1, 2], [2, 0]])  # 0 is padding: the last row does not count
    real = [(rows[0], 1), (rows[1], 2), (rows[2], 2)]
    nll = sum(-math.log(p[t]) for p, t in real)
    assert float(sequence_nll(logits, targets)) == pytest.approx(nll, rel=1e-6)
    eps = 0.3  # smoothing: (1 - eps) * NLL + eps * mean over classes of -log p
    smoothed = sum((1 - eps) * -math.log(p[t]) + eps * sum(-math.log(q) for q in p) / 3 for p, t in real)
    assert float(sequence_nll(logits, targets, label_smoothing=eps)) == pytest.approx(smoothed, rel=1e-6)
