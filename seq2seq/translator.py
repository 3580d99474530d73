"""Load a model directory and translate: the Python entry point.

    from seq2seq import Translator
    print(Translator.load("runs/demo").translate(["Tuesday, 3 March 2015"]))
"""

from __future__ import annotations

from pathlib import Path

import torch

from seq2seq.checkpoint import BEST, load_meta, load_weights
from seq2seq.config import DecodingConfig, Recipe
from seq2seq.decoding import decode_ids
from seq2seq.device import resolve_device
from seq2seq.extended import cut_sources, decode_extended, encode_sources
from seq2seq.model import Seq2Seq, build_model
from seq2seq.vocab import Vocab, load_vocabs


class Translator:
    """A trained model with its vocabularies, ready to translate strings."""

    def __init__(self, model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, recipe: Recipe,
                 device: torch.device):
        self.model, self.src_vocab, self.tgt_vocab = model.eval(), src_vocab, tgt_vocab
        self.recipe, self.device = recipe, device

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto",
             weights: str | Path = BEST) -> "Translator":
        """`weights`: a bare file name is looked up in the model directory; a path is used as is."""
        model_dir = Path(model_dir)
        recipe, meta = load_meta(model_dir)
        src_vocab, tgt_vocab = load_vocabs(model_dir, recipe.vocab.joint, meta)
        model = build_model(recipe.model, meta["src_vocab_size"], meta["tgt_vocab_size"])
        weights = Path(weights)
        load_weights(model, weights if len(weights.parts) > 1 else model_dir / weights)
        dev = resolve_device(device, "device")
        return cls(model.to(dev), src_vocab, tgt_vocab, recipe, dev)

    def encode(self, lines: list[str]) -> tuple[list[list[int]], list[list[str]] | None]:
        """Source ids, cut to data.max_source_length if the recipe sets one; with copy, extended
        ids and each line's source-only pieces (seq2seq/extended.py), else None. A blank line
        (empty or whitespace only) has no ids: decode_ids gives it an empty output."""
        lines = [line if line.strip() else "" for line in lines]
        sources, oovs = encode_sources(self.src_vocab, lines, self.model.copy is not None)
        limit = self.recipe.data.max_source_length
        return cut_sources(sources, oovs, limit, len(self.src_vocab)) if limit else (sources, oovs)

    def search(self, lines: list[str], beam_size: int | None = None, batch_size: int | None = None,
               nbest: int = 1, return_attention: bool = False, progress: bool = False,
               decoding: DecodingConfig | None = None):
        """Hypotheses (ids, scores, attention) for each line."""
        sources, _ = self.encode(lines)
        return decode_ids(self.model, sources, decoding or self.recipe.decoding, self.device,
                          autocast_on=self.recipe.training.autocast, beam_size=beam_size,
                          batch_size=batch_size, nbest=nbest, return_attention=return_attention,
                          progress=progress)

    def to_text(self, token_lists: list[list[int]], oovs: list[list[str]] | None) -> list[str]:
        """Output ids -> text; with copy, extended ids come out as the source text they stand for."""
        return decode_extended(self.tgt_vocab, token_lists, oovs) if token_lists else []

    def translate(self, lines: list[str], beam_size: int | None = None,
                  batch_size: int | None = None, progress: bool = False,
                  decoding: DecodingConfig | None = None) -> list[str]:
        """One output line per input line; `decoding` replaces the recipe's decoding section."""
        sources, oovs = self.encode(lines)
        hyps = decode_ids(self.model, sources, decoding or self.recipe.decoding, self.device,
                          autocast_on=self.recipe.training.autocast, beam_size=beam_size,
                          batch_size=batch_size, progress=progress)
        return self.to_text([h[0].tokens for h in hyps], oovs)
