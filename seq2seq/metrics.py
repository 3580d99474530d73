"""Corpus metrics: BLEU and chrF through sacreBLEU (with their signatures), ROUGE through
Google's `rouge-score` package (the reference implementation behind most published ROUGE)."""

from __future__ import annotations

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
