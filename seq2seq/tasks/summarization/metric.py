"""Summarisation scores: ROUGE through Google's `rouge-score` package (the reference
implementation behind most published ROUGE); and ROUGE-L as a validation metric of training
(`training.valid_metric: rouge`, a seq2seq.metrics.Metric; the translation room's VALID_METRICS
offers it)."""

from __future__ import annotations

from seq2seq.metrics import Metric

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


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


ROUGE_L = Metric("ROUGE-L", "rougeL", rouge,
                 lambda r: "ROUGE-1/2/L {rouge1:.2f}/{rouge2:.2f}/{rougeL:.2f}".format(**r))
