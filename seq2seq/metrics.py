"""The validation metric of training, as every room gives it: the score that picks the best
weights. The scores themselves are the rooms' (seq2seq/tasks/*/metric.py: BLEU and chrF,
ROUGE, accuracy and macro-F1, perplexity and bits per character, entity F1)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


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
