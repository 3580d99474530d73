"""Classification scores, x 100: accuracy and macro-F1; and the validation metrics of training
(`classification.valid_metric`: CLASSIFICATION_METRICS[name], a seq2seq.metrics.Metric).

Macro-F1 is the unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN), over the classes
that occur in the gold labels or the predictions (scikit-learn's f1_score(average="macro") with
its default label set): a class that is predicted but never gold counts with F1 0, a class of the
model that neither names does not count.
"""

from __future__ import annotations

from collections import Counter

from seq2seq.metrics import Metric


def accuracy(predicted: list[str], gold: list[str]) -> float:
    _check(predicted, gold)
    return 100.0 * sum(p == g for p, g in zip(predicted, gold)) / max(len(gold), 1)


def macro_f1(predicted: list[str], gold: list[str]) -> float:
    _check(predicted, gold)
    right = Counter(g for p, g in zip(predicted, gold) if p == g)  # TP per class
    said, truth = Counter(predicted), Counter(gold)  # TP + FP, TP + FN
    classes = said.keys() | truth.keys()
    return 100.0 * sum(2 * right[c] / (said[c] + truth[c]) for c in classes) / max(len(classes), 1)


def _check(predicted: list[str], gold: list[str]) -> None:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions but {len(gold)} gold labels")


def scores(predicted: list[str], gold: list[str]) -> dict[str, float]:
    """The fields of a validation record (train_log.jsonl) and of seq2seq-evaluate --json."""
    return {"accuracy": accuracy(predicted, gold), "macro_f1": macro_f1(predicted, gold)}


def summary(record: dict) -> str:
    return f"accuracy {record['accuracy']:.2f} macro-F1 {record['macro_f1']:.2f}"


CLASSIFICATION_METRICS = {
    "accuracy": Metric("accuracy", "accuracy", scores, summary),
    "macro_f1": Metric("macro-F1", "macro_f1", scores, summary),
}
