"""Translation scores: BLEU and chrF through sacreBLEU, with their signatures; and the validation
metrics of training (`training.valid_metric`: VALID_METRICS[name], a seq2seq.metrics.Metric),
which the summarisation room's ROUGE-L joins, since the two tasks share this room's training."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF

from seq2seq.metrics import Metric
from seq2seq.tasks.summarization.metric import ROUGE_L


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


def _bleu_fields(hypotheses: list[str], references: list[str]) -> dict:
    score, signature = bleu(hypotheses, references)
    return {"bleu": score, "signature": signature}


VALID_METRICS = {
    "bleu": Metric("BLEU", "bleu", _bleu_fields, lambda r: f"BLEU {r['bleu']:.2f}"),
    "rouge": ROUGE_L,
}
