"""Summarisation (`task: summarization`): the translation room's encoder-decoder, trained on
document -> summary pairs, usually with copy (pointer-generator) and coverage; ROUGE.

What it reuses rather than copies: the translation room's data reading (PREFIX.SRC documents,
PREFIX.TGT summaries, or data.hub), model assembly, training (train, below, is that room's, with
training.valid_metric: rouge for ROUGE-L) and seq2seq-evaluate (evaluate, below: --metric rouge).
What is its own:

    summarizer.py   Summarizer: a Translator for a summarisation model directory, with minimum and
                    maximum lengths and no-repeat n-grams per call
    metric.py       ROUGE-1/2/L F1 (rouge-score), and ROUGE-L as a validation metric
"""

from __future__ import annotations

from seq2seq.tasks.summarization.summarizer import Summarizer
from seq2seq.tasks.translation import evaluate, train

__all__ = ["Summarizer", "evaluate", "train"]
