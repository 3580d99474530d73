"""Corpus metrics: BLEU and chrF through sacreBLEU (with their signatures), ROUGE through
Google's `rouge-score` package (the reference implementation behind most published ROUGE); and the
validation metric of training (`training.valid_metric`: VALID_METRICS[name], a Metric)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from sacrebleu.metrics import BLEU, CHRF

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def bleu(hypotheses: list[str], references: list[str], *more: list[str]) -> tuple[float, str]:
    """Cased BLEU, 13a tokenisation, on detokenised text; returns (score, signature). `more`:
    further reference streams (line i of each is another reference for hypothesis i)."""
    metric = BLEU()
    score = metric.corpus_score(hypotheses, [references, *more])
    return score.score, str(metric.get_signature())


def chrf(hypotheses: list[str], references: list[str], *more: list[str]) -> tuple[float, str]:
    metric = CHRF()
    score = metric.corpus_score(hypotheses, [references, *more])
    return score.score, str(metric.get_signature())


def rouge(hypotheses: list[str], references: list[str] | list[list[str]]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (x 100) with the Porter stemmer on, as rouge-score
    computes them (lower-cased, non-alphanumerics dropped). `references`: one string per
    hypothesis, or a list of strings each; with several, a hypothesis counts the best-scoring
    one (rouge-score's score_multi)."""
    from rouge_score import rouge_scorer
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, refs in zip(hypotheses, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        scores = scorer.score_multi(refs, hyp)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    n = max(len(hypotheses), 1)
    return {key: 100.0 * value / n for key, value in totals.items()}


# ---------------------------------------------------------------- the validation metric


@dataclass(frozen=True)
class Metric:
    """The score that picks the best weights, drives the plateau schedule and early stopping
    (`training.valid_metric`)."""

    name: str  # as printed, e.g. "BLEU"
    key: str  # the score's field in a validation record (train_log.jsonl)
    compute: Callable[[list[str], list[str]], dict]  # (hypotheses, references) -> record fields
    summary: Callable[[dict], str]  # a record's scores, for the validation line
    higher_is_better: bool = True

    @property
    def worst(self) -> float:
        """The best score before the first validation."""
        return -math.inf if self.higher_is_better else math.inf

    def better(self, score: float, best: float) -> bool:
        return score > best if self.higher_is_better else score < best


def _bleu_fields(hypotheses: list[str], references: list[str]) -> dict:
    score, signature = bleu(hypotheses, references)
    return {"bleu": score, "signature": signature}


VALID_METRICS = {
    "bleu": Metric("BLEU", "bleu", _bleu_fields, lambda r: f"BLEU {r['bleu']:.2f}"),
    "rouge": Metric("ROUGE-L", "rougeL", rouge,
                    lambda r: "ROUGE-1/2/L {rouge1:.2f}/{rouge2:.2f}/{rougeL:.2f}".format(**r)),
}
