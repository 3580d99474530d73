"""Load a summarisation model directory and summarise documents: the Python entry point.

    from seq2seq import Summarizer
    print(Summarizer.load("runs/dialogsum").summarize(["#Person1#: Hi ..."], beam_size=4))

A summariser is a model directory whose recipe says `task: summarization` (the recipes under
recipes/summarization/); decoding options default to the recipe's decoding section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from seq2seq.checkpoint import BEST, load_meta
from seq2seq.errors import UserError
from seq2seq.tasks.translation.ensemble import model_dirs
from seq2seq.tasks.translation.translator import Translator


class Summarizer(Translator):
    """A Translator whose model was trained to summarise (meta.json task 'summarization')."""

    @classmethod
    def load(cls, model_dir: str | Path | Sequence[str | Path], device: str = "auto",
             weights: str | Path = BEST, precision: str | None = None) -> "Summarizer":
        """As Translator.load: one model directory, or a list of them (an ensemble)."""
        for path in model_dirs(model_dir):
            _, meta = load_meta(path)
            if meta.get("task") != "summarization":
                raise UserError(f"{path}: not a summarisation model (meta.json task is "
                                f"{meta.get('task')!r}); use seq2seq-translate, or train a recipe with "
                                "task: summarization")
        return super().load(model_dir, device, weights, precision)

    def summarize(self, documents: list[str], beam_size: int | None = None, *,
                  min_length: int | None = None, max_length: int | None = None,
                  no_repeat_ngram_size: int | None = None, length_penalty: float | None = None,
                  batch_size: int | None = None,
                  progress: bool = False, sampling: str | None = None,
                  temperature: float | None = None, seed: int | None = None,
                  first_index: int = 0) -> list[str]:
        """One summary per document; None keeps the recipe's value. An empty or whitespace-only
        document gets an empty summary (it is not searched, whatever min_length says).
        `sampling` ('topk:K', 'topp:P'), `temperature`, `seed`, `first_index`: one sample per
        document, as Translator.translate_full draws them."""
        changes = {"min_length": min_length, "max_length": max_length,
                   "no_repeat_ngram_size": no_repeat_ngram_size, "length_penalty": length_penalty}
        for name, value in changes.items():
            if value is not None and not 0 <= value < float("inf"):
                raise UserError(f"{name}: must be >= 0, got {value}")
        decoding = dataclasses.replace(self.recipe.decoding,
                                       **{k: v for k, v in changes.items() if v is not None})
        return self.translate(documents, beam_size, batch_size, progress=progress, decoding=decoding,
                              sampling=sampling, temperature=temperature, seed=seed,
                              first_index=first_index)
