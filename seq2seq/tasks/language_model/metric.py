"""Language-model scores from summed negative log-likelihood, and the validation metric of training
(BPC, a seq2seq.metrics.Metric, lower is better).

    loss (valid_loss)   nats per unit: what training minimises
    ppl (valid_ppl)     exp(loss): perplexity per unit (per character with character units)
    nats_per_char       the same nats over the characters of the text: the text's characters,
                        each newline one, however many units spell them
    bpc                 nats_per_char / ln 2: bits per character

With character units (vocab.model_type char, spelt verbatim) units and characters are the same
count, so loss = nats_per_char, except where a character the vocabulary lacks is one unknown
unit. With pieces (unigram, bpe, word) a unit spans several characters: bpc is the text's total
nats spread over its characters, comparable across vocabularies; ppl stays per piece.
"""

from __future__ import annotations

import math

from seq2seq.metrics import Metric


def scores(nats: float, units: int, characters: int) -> dict:
    """The fields of a validation record (train_log.jsonl), of seq2seq-evaluate --json and of
    LanguageModel.score; `nats`: summed over `units` targets spelling `characters` characters."""
    if units < 1 or characters < 1:
        raise ValueError(f"nothing to score: {units} units, {characters} characters")
    loss, per_char = nats / units, nats / characters
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "nats_per_char": per_char, "bpc": per_char / math.log(2),
            "units": units, "characters": characters}


def summary(record: dict) -> str:
    return f"bpc {record['bpc']:.3f} ({record['nats_per_char']:.3f} nats/char)"


def _validation_fields(nats: float, units: int, characters: int) -> dict:
    """scores() under the names a validation record gives them (the trainer reads valid_loss and
    valid_ppl)."""
    out = scores(nats, units, characters)
    out["valid_loss"], out["valid_ppl"] = out.pop("loss"), out.pop("ppl")
    return out


# compute: (nats, units, characters) -> record fields, not the (hypotheses, references) of text metrics
BPC = Metric("bpc", "bpc", _validation_fields, summary, higher_is_better=False)
