"""Recipe checks after every value has its type: the rules between fields (errors), and the
settings that the recipe's other choices leave unused or that look like slips (warnings).

Every combination that passes `_check` builds and runs (tests/test_properties.py); every message
names each key of its rule. seq2seq/recipe_io.py calls these while reading a recipe.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from seq2seq.config import (AttentionConfig, ClassificationConfig, DataConfig, DecoderConfig, DecodingConfig,
                            EncoderConfig, LanguageModelConfig, ModelConfig, Recipe, TaggingConfig, VocabConfig)


def _show(value: Any, limit: int = 60) -> str:
    """repr for messages, cut to `limit` characters; ints too long for repr() are summarised."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits, maybe inside a list
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<too long>"
    return text if len(text) <= limit else text[:limit] + "..."


def _encoder_output(m: ModelConfig) -> tuple[int, str]:
    """The encoder's output size, and the keys that make it (for messages)."""
    e = m.encoder
    if e.bidirectional:
        return 2 * e.hidden_size, (f"{2 * e.hidden_size}: model.encoder.hidden_size {e.hidden_size} x 2 "
                                   "directions, model.encoder.bidirectional true")
    return e.hidden_size, (f"{e.hidden_size}: model.encoder.hidden_size {e.hidden_size}, "
                           "model.encoder.bidirectional false")


def _longest_row(data: DataConfig) -> tuple[str, str, int]:
    """What the longest sentence costs in a token budget (a batch costs sentences x the longest
    side, the target + EOS): the key that limits it, its pieces in words, the tokens."""
    if data.target_limit + 1 > data.source_limit:
        key = "data.max_target_length" if data.max_target_length else "data.max_length"
        return key, f"{data.target_limit} pieces + EOS", data.target_limit + 1
    key = "data.max_source_length" if data.max_source_length else "data.max_length"
    return key, f"{data.source_limit} pieces", data.source_limit


def _check(recipe: Recipe, errors: list[str]) -> None:
    """Rules between fields: every combination that passes builds and runs (see
    tests/test_properties.py); each message names every key of its rule."""
    m, t, d = recipe.model, recipe.training, recipe.decoding
    enc_out, enc_how = _encoder_output(m)
    if m.decoder.init == "last" and enc_out != m.decoder.hidden_size:
        errors.append(f"model.decoder.init: 'last' needs model.decoder.hidden_size ({m.decoder.hidden_size})"
                      f" equal to the encoder output size ({enc_how}); use 'bridge'")
    if m.attention.type == "dot" and enc_out != m.decoder.hidden_size:
        errors.append(f"model.attention.type: 'dot' needs model.decoder.hidden_size ({m.decoder.hidden_size})"
                      f" equal to the encoder output size ({enc_how}); use 'general'")
    conditional = m.decoder.type == "conditional" and recipe.task in ("translation", "summarization")
    if m.tie_output and not conditional and m.embedding_size != m.decoder.hidden_size:
        errors.append(f"model.tie_output: needs model.embedding_size ({m.embedding_size}) equal to "
                      f"model.decoder.hidden_size ({m.decoder.hidden_size}), the size of the output "
                      "layer's input (with model.decoder.type 'conditional' it is model.embedding_size)")
    if conditional and m.decoder.num_layers != 1:
        errors.append(f"model.decoder.num_layers: {m.decoder.num_layers}, but model.decoder.type "
                      "'conditional' is one layer (two cells with attention between them); use 1")
    for side, used in (("encoder", recipe.task != "language_model"),
                       ("decoder", recipe.task not in ("classification", "tagging"))):
        section = getattr(m, side)
        if used and section.layer_norm and section.cell == "rnn":
            errors.append(f"model.{side}.layer_norm: normalises the gates of model.{side}.cell 'gru', 'lstm', "
                          "'peephole_lstm' or 'wm_lstm', and 'rnn' has none")
    if m.decoder.feed_dropout > 0 and not m.decoder.input_feeding:
        errors.append("model.decoder.feed_dropout: drops the fed-back attentional vector, which needs "
                      "model.decoder.input_feeding: true")
    if m.share_embeddings and not recipe.vocab.joint:
        errors.append("model.share_embeddings: needs vocab.joint: true")
    if m.copy and not recipe.vocab.joint:
        errors.append("model.copy: needs vocab.joint: true (copied pieces are target pieces)")
    if m.attention.coverage and m.attention.type not in ("bahdanau", "concat"):
        errors.append(f"model.attention.coverage: needs an additive model.attention.type ('bahdanau' or "
                      f"'concat'), not {m.attention.type!r}")
    if m.attention.scaled and m.attention.type not in ("dot", "general"):
        errors.append(f"model.attention.scaled: applies to model.attention.type 'dot' and 'general', not "
                      f"{m.attention.type!r}")
    if t.coverage_weight > 0 and not m.attention.coverage:
        errors.append("training.coverage_weight: needs model.attention.coverage: true")
    if t.scheduler == "plateau" and t.min_lr >= t.lr:
        errors.append(f"training.min_lr: {t.min_lr:g} must be below training.lr ({t.lr:g}) for "
                      "training.scheduler 'plateau' to lower the learning rate")
    if recipe.task == "tagging" and recipe.tagging.tag_column == 0:
        errors.append("tagging.tag_column: 0 is the column of the words; the tags are in another")
    # (a language model's batch: language_model.streams; a tagger's sentences are never cut)
    if t.batch_type == "tokens" and recipe.task not in ("language_model", "tagging"):
        key, pieces, needed = _longest_row(recipe.data)
        if t.batch_size < needed:
            errors.append(f"training.batch_size: {t.batch_size} tokens (training.batch_type 'tokens') "
                          f"cannot hold one sentence of {key} ({pieces}); use at least {needed} or "
                          f"a lower {key}")
    if d.nbest > d.beam_size:
        errors.append(f"decoding.nbest: {d.nbest} is more than decoding.beam_size ({d.beam_size})")
    if d.max_length and d.min_length > d.max_length:
        errors.append(f"decoding.min_length: {d.min_length} is more than decoding.max_length "
                      f"({d.max_length})")


def _not_chosen(recipe: Recipe) -> dict[str, str]:
    """Settings that the recipe's other choices leave unused: key -> the choice that does."""
    m, t, d = recipe.model, recipe.training, recipe.decoding
    unused = {}
    if t.optimizer != "sgd":
        unused["training.momentum"] = f"applies to training.optimizer 'sgd' only, not {t.optimizer!r}"
    if t.scheduler != "plateau":
        for key in ("plateau_factor", "plateau_patience", "min_lr"):
            unused[f"training.{key}"] = f"applies to training.scheduler 'plateau' only, not {t.scheduler!r}"
    if t.scheduler != "warmup":
        unused["training.warmup_steps"] = f"applies to training.scheduler 'warmup' only, not {t.scheduler!r}"
    if m.init != "xavier":
        unused["model.embedding_init_std"] = f"applies to model.init 'xavier' only, not {m.init!r}"
    if m.attention.type in ("dot", "general"):
        unused["model.attention.hidden_size"] = ("sizes the score layer of model.attention.type "
                                                 f"'bahdanau' and 'concat', not {m.attention.type!r}")
    if d.beam_size == 1:
        for key in ("length_penalty", "coverage_penalty"):
            unused[f"decoding.{key}"] = "applies to beam search only, and decoding.beam_size is 1 (greedy)"
    if recipe.task != "language_model":
        unused.update(dict.fromkeys(_leaves("language_model", LanguageModelConfig),
                                    f"applies to task 'language_model' only, not {recipe.task!r}"))
    else:
        unused.update(dict.fromkeys(_LM_UNUSED, "does not apply to task 'language_model'"))
    if recipe.task != "tagging":
        unused.update(dict.fromkeys(_leaves("tagging", TaggingConfig), f"applies to task 'tagging' only, not {recipe.task!r}"))
    else:
        unused.update(dict.fromkeys(_TAGGING_UNUSED, "does not apply to task 'tagging'"))
        if not recipe.tagging.char_encoder:
            for key in ("char_embedding_size", "char_hidden_size"):
                unused[f"tagging.{key}"] = "applies to tagging.char_encoder true only"
    c = recipe.classification
    if recipe.task != "classification":
        unused.update(dict.fromkeys(_leaves("classification", ClassificationConfig),
                                    f"applies to task 'classification' only, not {recipe.task!r}"))
        return unused
    unused.update(dict.fromkeys(_SEQ2SEQ_ONLY, "applies to task 'translation' and 'summarization', not "
                                               "'classification'"))
    for key in ("text_suffix", "label_suffix", "text_column", "label_column"):
        wanted = "csv" if key.endswith("column") else "text"
        if c.format != wanted:
            unused[f"classification.{key}"] = f"applies to classification.format {wanted!r} only, not {c.format!r}"
    if c.pooling != "attention":
        unused["classification.attention_size"] = f"applies to classification.pooling 'attention' only, not {c.pooling!r}"
    return unused


def _leaves(path: str, cls: type) -> list[str]:
    return [f"{path}.{f.name}" for f in dataclasses.fields(cls)]


_EVERY_TASK = ("decoding.batch_size", "decoding.precision")  # the decoding keys the task rooms use too


# what text classification leaves unused (decoding.batch_size sizes its batches too, decoding.precision
# is its inference precision as for every task)
_SEQ2SEQ_ONLY = ("data.src", "data.tgt", "data.max_source_length", "data.max_target_length", "data.empty_lines",
                 *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")), "vocab.joint",
                 *_leaves("model.attention", AttentionConfig), *_leaves("model.decoder", DecoderConfig),
                 "model.tie_output", "model.share_embeddings", "model.copy", "model.source_word_dropout",
                 "training.coverage_weight", "training.valid_metric", "training.teacher_forcing", "training.compile", "training.last_phase",
                 *(k for k in _leaves("decoding", DecodingConfig) if k not in _EVERY_TASK))


# what the language model leaves unused: its network is model.embedding_size, embedding_dropout,
# the decoder's cell, layer_norm, hidden_size, num_layers and dropout, tie_output and init
_LM_UNUSED = ("data.src", "data.tgt", "data.max_length", "data.max_source_length", "data.max_target_length",
              "data.long_lines", "data.empty_lines", *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")),
              "vocab.joint", *_leaves("model.encoder", EncoderConfig), *_leaves("model.attention", AttentionConfig),
              "model.decoder.input_feeding", "model.decoder.init", "model.decoder.type",
              "model.decoder.output_dropout", "model.decoder.feed_dropout", "model.source_word_dropout", "model.share_embeddings", "model.copy",
              "training.coverage_weight", "training.valid_metric", "training.teacher_forcing", "training.batch_type",
              "training.batch_size", "training.compile", "training.last_phase",
              *(k for k in _leaves("decoding", DecodingConfig) if k != "decoding.precision"))


# what the tagger leaves unused: its words come from tagging.min_count (no sentencepiece), its sentences
# are never cut, its network is model.embedding_size, embedding_dropout, encoder and init
_TAGGING_UNUSED = ("data.src", "data.tgt", "data.max_length", "data.max_source_length", "data.max_target_length",
                   "data.long_lines", "data.empty_lines", *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")),
                   *_leaves("vocab", VocabConfig), *_leaves("model.attention", AttentionConfig),
                   *_leaves("model.decoder", DecoderConfig), "model.tie_output", "model.share_embeddings", "model.copy",
                   "model.source_word_dropout", "training.coverage_weight", "training.valid_metric", "training.teacher_forcing", "training.compile", "training.last_phase",
                   *(k for k in _leaves("decoding", DecodingConfig) if k not in _EVERY_TASK))


def _given(raw: Any, path: str = "") -> set[str]:
    """The key paths a recipe (with its overrides) sets: the leaves of its mapping."""
    if not isinstance(raw, dict) or not raw:
        return {path} if path else set()
    return set().union(*(_given(v, f"{path}.{k}" if path else str(k)) for k, v in raw.items()))


def _lookup(recipe: Any, key: str) -> Any:
    for part in key.split("."):
        recipe = getattr(recipe, part)
    return recipe


def unused_settings(recipe: Recipe, given: set[str]) -> list[str]:
    """One line for each setting given (and not the default) that the recipe's choices leave
    unused; nothing is changed, the user is told."""
    return [f"{key}: {_show(_lookup(recipe, key))} is not used: it {why}"
            for key, why in _not_chosen(recipe).items()
            if key in given and _lookup(recipe, key) != _lookup(Recipe(), key)]


def likely_slips(recipe: Recipe) -> list[str]:
    """Settings that work but are more often a slip than meant, one line each."""
    notes = []
    t, data = recipe.training, recipe.data
    if t.batch_type == "tokens" and recipe.task not in ("language_model", "tagging"):
        key, pieces, needed = _longest_row(data)
        if t.batch_size < 2 * needed:
            notes.append(f"training.batch_size: {t.batch_size} tokens (training.batch_type 'tokens') hold "
                         f"one sentence of {key} ({pieces}) at most; if {t.batch_size} was meant as "
                         "sentences, set training.batch_type: sentences")
    m = recipe.model
    if m.tie_output and m.init == "torch":  # docs/results/multi30k_best.md: 4.36 BLEU after an epoch, not 10.57
        notes.append("model.tie_output: the output layer shares embeddings that model.init 'torch' starts at "
                     "N(0, 1), so the first logits are far too large and learning is slow; set model.init: "
                     f"xavier and model.embedding_init_std: {m.embedding_size ** -0.5:.3g} "
                     f"(1 / sqrt(model.embedding_size {m.embedding_size}))")
    if data.src == data.tgt:
        notes.append(f"data.tgt: {data.tgt!r} is data.src too: the model learns to copy its input")
    if data.valid == data.train:
        notes.append(f"data.valid: {data.valid!r} is data.train too: validation scores the training data")
    for split in data.test:
        names = [name for name in re.split(r"[,\s]+", split) if name]
        if len(names) > 1:
            notes.append(f"data.test: {split!r} is one split name; for several write a list, "
                         f"data.test=[{', '.join(names)}]")
    return notes
