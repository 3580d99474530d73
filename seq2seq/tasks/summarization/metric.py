"""Summarisation scores: ROUGE through Google's `rouge-score` package (the reference
implementation behind most published ROUGE); and ROUGE-L as a validation metric of training
(`training.valid_metric: rouge`, a seq2seq.metrics.Metric; the translation room's VALID_METRICS
offers it)."""

from __future__ import annotations

from statistics import fmean

from seq2seq.metrics import Metric

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
MULTI_REFERENCE = ("best", "mean")  # how several references per document count


def rouge(hypotheses: list[str], references: list[str] | list[list[str]], multi: str = "best") -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (x 100) with the Porter stemmer on, as rouge-score
    computes them (lower-cased, non-alphanumerics dropped). `references`: one string per
    hypothesis, or a list of strings each; with several, a hypothesis counts the best-scoring
    one (`multi` "best": rouge-score's score_multi) or the mean of its scores against each ("mean")."""
    from rouge_score import rouge_scorer
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if multi not in MULTI_REFERENCE:
        raise ValueError(f"multi: {multi!r} is not one of {', '.join(MULTI_REFERENCE)}")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, refs in zip(hypotheses, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if multi == "best":
            f1 = {key: score.fmeasure for key, score in scorer.score_multi(refs, hyp).items()}
        else:
            each = [scorer.score(ref, hyp) for ref in refs]
            f1 = {key: fmean(s[key].fmeasure for s in each) for key in ROUGE_TYPES}
        for key in ROUGE_TYPES:
            totals[key] += f1[key]
    n = max(len(hypotheses), 1)
    return {key: 100.0 * value / n for key, value in totals.items()}


ROUGE_L = Metric("ROUGE-L", "rougeL", rouge,
                 lambda r: "ROUGE-1/2/L {rouge1:.2f}/{rouge2:.2f}/{rougeL:.2f}".format(**r))
