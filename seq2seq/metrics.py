"""Corpus metrics through sacreBLEU (BLEU, chrF), with their signatures."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def bleu(hypotheses: list[str], references: list[str]) -> tuple[float, str]:
    """Cased BLEU, 13a tokenisation, on detokenised text; returns (score, signature)."""
    metric = BLEU()
    score = metric.corpus_score(hypotheses, [references])
    return score.score, str(metric.get_signature())


def chrf(hypotheses: list[str], references: list[str]) -> tuple[float, str]:
    metric = CHRF()
    score = metric.corpus_score(hypotheses, [references])
    return score.score, str(metric.get_signature())
