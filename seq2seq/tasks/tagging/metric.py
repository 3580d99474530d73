"""Tagging scores, x 100: entity-level precision, recall and F1 through seqeval, as conlleval
counts them (a predicted entity counts when its type and both ends match a gold one; seqeval's
default mode, which reads I-X after O as opening a span, as conlleval does), and token accuracy
(the share of tokens whose tag is right, O included); and the validation metric of training
(TAGGING_METRIC, a seq2seq.metrics.Metric: entity F1). Tags are IOB2 on both sides.
"""

from __future__ import annotations

import warnings

from seq2seq.metrics import Metric


def _check(predicted: list[list[str]], gold: list[list[str]]) -> None:
    if len(predicted) != len(gold) or any(len(p) != len(g) for p, g in zip(predicted, gold)):
        raise ValueError("predicted and gold tags differ in sentences or tokens")


def scores(predicted: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """The fields of a validation record (train_log.jsonl): precision, recall, f1, token_accuracy."""
    from seqeval.metrics.sequence_labeling import accuracy_score, precision_recall_fscore_support
    _check(predicted, gold)
    with warnings.catch_warnings():  # no entity predicted (early in training): 0, not a warning
        warnings.simplefilter("ignore")
        p, r, f, _ = precision_recall_fscore_support(gold, predicted, average="micro", zero_division=0)
    return {"precision": 100.0 * float(p), "recall": 100.0 * float(r), "f1": 100.0 * float(f),  # (not numpy's)
            "token_accuracy": 100.0 * float(accuracy_score(gold, predicted))}


def per_type(predicted: list[list[str]], gold: list[list[str]]) -> dict[str, dict[str, float]]:
    """{entity type: {"precision", "recall", "f1", "support" (gold entities)}} for the types of either side."""
    from seqeval.metrics import classification_report
    _check(predicted, gold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {kind: {"precision": 100.0 * float(v["precision"]), "recall": 100.0 * float(v["recall"]),
                   "f1": 100.0 * float(v["f1-score"]), "support": int(v["support"])}
            for kind, v in report.items() if not kind.endswith(" avg")}


def summary(record: dict) -> str:
    return (f"entity P/R/F1 {record['precision']:.2f}/{record['recall']:.2f}/{record['f1']:.2f} "
            f"token accuracy {record['token_accuracy']:.2f}")


TAGGING_METRIC = Metric("entity F1", "f1", scores, summary)
