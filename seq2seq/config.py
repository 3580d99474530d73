"""Recipes: frozen dataclasses that hold every default, loaded from YAML with strict checking.

A recipe lists only what it changes. Every unknown key, wrong type or out-of-range value is
collected (not just the first) and reported with its key path, the nearest valid name and the
allowed values, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from seq2seq.errors import UserError

Cell = Literal["rnn", "gru", "lstm", "peephole_lstm", "wm_lstm"]  # see seq2seq/modules/cells.py
_FLOAT32_MAX = 3.4028234663852886e38  # recipe numbers meet float32 tensors
_INT64_MAX = 2**63 - 1  # and int64 ones: the bound of every integer that states no other
_INT32_MAX = 2**31 - 1
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")  # YAML 1.1 reads 3e-4 as a string


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


@dataclass(frozen=True)
class DataConfig:
    dir: str = "data"  # folder holding the parallel files <prefix>.<lang>
    src: str = "src"  # source file suffix (language code)
    tgt: str = "tgt"  # target file suffix
    train: str = "train"  # prefix of the training files
    valid: str = "valid"  # prefix of the validation files
    test: tuple[str, ...] = ()  # prefixes scored by the recipe scripts
    max_length: int = field(default=100, metadata=_range(1))  # tokens per side after subwords
    max_source_length: int = field(default=0, metadata=_range(0))  # 0: max_length
    max_target_length: int = field(default=0, metadata=_range(0))  # 0: max_length
    long_lines: Literal["truncate", "skip"] = "truncate"  # what to do with longer sentences
    empty_lines: Literal["skip", "error"] = "skip"  # pairs with an empty side
    hub: str = ""  # a hub data set name or a save_to_disk/parquet folder, written into dir (hub.py)
    hub_config: str = ""  # the hub data set's configuration (subset) name, e.g. 'de-en'
    hub_src_column: str = ""  # "": column <src> or translation.<src>; 'a.b' is field b of column a
    hub_tgt_column: str = ""  # "": column <tgt> or translation.<tgt>
    hub_splits: tuple[str, ...] = ()  # PREFIX=SPLIT where a file prefix is not its hub split name

    @property
    def source_limit(self) -> int:
        return self.max_source_length or self.max_length

    @property
    def target_limit(self) -> int:
        return self.max_target_length or self.max_length


@dataclass(frozen=True)
class VocabConfig:
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram"  # sentencepiece algorithm
    size: int = field(default=8000, metadata=_range(8, _INT32_MAX))  # pieces per model (spm: int32)
    joint: bool = True  # one model for source and target
    character_coverage: float = field(default=1.0, metadata=_range(0.5, 1.0))
    max_sentences: int = field(default=200_000, metadata=_range(1))  # sentences used to train


@dataclass(frozen=True)
class EncoderConfig:
    cell: Cell = "gru"
    hidden_size: int = field(default=256, metadata=_range(1))  # per direction
    num_layers: int = field(default=1, metadata=_range(1))
    bidirectional: bool = True
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on inputs and outputs


@dataclass(frozen=True)
class AttentionConfig:
    type: Literal["bahdanau", "dot", "general", "concat"] = "bahdanau"
    hidden_size: int = field(default=0, metadata=_range(0))  # score layer width; 0: decoder size
    coverage: bool = False  # past attention summed into the score (See et al. 2017); additive only
    scaled: bool = False  # dot/general: scores / sqrt(query size) (Vaswani et al. 2017)


@dataclass(frozen=True)
class DecoderConfig:
    cell: Cell = "gru"
    hidden_size: int = field(default=512, metadata=_range(1))
    num_layers: int = field(default=1, metadata=_range(1))
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))
    input_feeding: bool = True  # feed the last attentional vector to the next step
    init: Literal["bridge", "last", "zero"] = "bridge"  # initial state from the encoder


@dataclass(frozen=True)
class ModelConfig:
    embedding_size: int = field(default=256, metadata=_range(1))
    embedding_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))
    encoder: EncoderConfig = EncoderConfig()
    attention: AttentionConfig = AttentionConfig()
    decoder: DecoderConfig = DecoderConfig()
    tie_output: bool = False  # output layer shares the target embedding matrix
    share_embeddings: bool = False  # source and target share one embedding (joint vocab)
    init: Literal["torch", "xavier"] = "torch"  # see seq2seq/modules/init.py
    embedding_init_std: float = field(default=0.01, metadata=_range(0.0, lo_open=True))  # xavier only
    copy: bool = False  # pointer-generator: copy source pieces, even unknown ones (joint vocab)


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = field(default=1e-3, metadata=_range(0.0, lo_open=True))
    weight_decay: float = field(default=0.0, metadata=_range(0.0))
    momentum: float = field(default=0.0, metadata=_range(0.0, 1.0))  # sgd only
    clip_norm: float = field(default=1.0, metadata=_range(0.0))  # 0 disables
    clip_value: float = field(default=0.0, metadata=_range(0.0))  # 0 disables
    label_smoothing: float = field(default=0.0, metadata=_range(0.0, 1.0))
    coverage_weight: float = field(default=0.0, metadata=_range(0.0))  # coverage loss; needs coverage
    valid_metric: Literal["bleu", "rouge"] = "bleu"  # rouge: ROUGE-L F1; drives saving and stopping
    teacher_forcing: float = field(default=1.0, metadata=_range(0.0, 1.0))  # ratio of gold inputs
    batch_type: Literal["tokens", "sentences"] = "tokens"
    batch_size: int = field(default=1000, metadata=_range(1))  # padded tokens or sentences
    epochs: int = field(default=10, metadata=_range(1))
    max_steps: int = field(default=0, metadata=_range(0))  # 0: no limit
    scheduler: Literal["none", "plateau", "warmup"] = "none"
    plateau_factor: float = field(default=0.5, metadata=_range(0.0, 1.0, lo_open=True))
    plateau_patience: int = field(default=1, metadata=_range(0))  # validations without gain
    min_lr: float = field(default=1e-6, metadata=_range(0.0))
    warmup_steps: int = field(default=1000, metadata=_range(1))  # then inverse square root
    validate_every: int = field(default=0, metadata=_range(0))  # steps; 0: once per epoch
    patience: int = field(default=0, metadata=_range(0))  # early stop; 0: never
    log_every: int = field(default=100, metadata=_range(1))
    accumulate: int = field(default=1, metadata=_range(1))  # batches per update on each process
    checkpoint_every: int = field(default=0, metadata=_range(0))  # steps; 0: at validations only
    keep_checkpoints: int = field(default=2, metadata=_range(1))  # newest checkpoints kept on disk
    max_bad_steps: int = field(default=10, metadata=_range(1))  # non-finite steps in a row, then stop
    seed: int = field(default=1, metadata=_range(0, 2**63 - 1))
    device: Literal["auto", "cpu", "cuda"] = "auto"
    autocast: bool = True  # bf16 autocast on CUDA
    compile: bool = False  # torch.compile the decoder step (seq2seq/compiling.py)
    threads: int = field(default=0, metadata=_range(0, 1024))  # CPU threads; 0: all cores
    dist_timeout_minutes: float = field(default=60.0, metadata=_range(0.0, lo_open=True))  # torchrun: collective timeout


@dataclass(frozen=True)
class DecodingConfig:
    beam_size: int = field(default=5, metadata=_range(1))  # 1: greedy
    length_penalty: float = field(default=1.0, metadata=_range(0.0))  # GNMT alpha
    # max = ratio * S + offset (bounded so that it stays an int64 for any source)
    max_length_ratio: float = field(default=1.5, metadata=_range(0.0, 1e6, lo_open=True))
    max_length_offset: int = field(default=10, metadata=_range(0, _INT32_MAX))
    nbest: int = field(default=1, metadata=_range(1))
    batch_size: int = field(default=64, metadata=_range(1))  # sentences
    min_length: int = field(default=0, metadata=_range(0))  # tokens before EOS may come
    max_length: int = field(default=0, metadata=_range(0))  # hard cap on output tokens; 0: none
    no_repeat_ngram_size: int = field(default=0, metadata=_range(0))  # 0: no blocking
    coverage_penalty: float = field(default=0.0, metadata=_range(0.0))  # GNMT beta; beam only


@dataclass(frozen=True)
class ClassificationConfig:
    """task: classification (seq2seq/tasks/classification/): its files, pooling and output layer."""
    format: Literal["text", "csv"] = "text"  # text: PREFIX.<text_suffix> + PREFIX.<label_suffix>; csv: PREFIX.csv
    text_suffix: str = "txt"  # format text: the file of texts, one per line
    label_suffix: str = "label"  # format text: the file of class names, one per line
    text_column: str = "text"  # format csv: the column of texts (named by the header row)
    label_column: str = "label"  # format csv: the column of class names
    pooling: Literal["last", "mean", "max", "attention"] = "max"  # encoder states -> one vector
    attention_size: int = field(default=0, metadata=_range(0))  # attention pooling's score layer; 0: encoder output size
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on the pooled vector
    valid_metric: Literal["accuracy", "macro_f1"] = "accuracy"  # drives saving and stopping


@dataclass(frozen=True)
class LanguageModelConfig:
    """task: language_model (seq2seq/tasks/language_model/): its text and how it is cut into batches.
    The units are vocab.model_type's (char: characters; unigram, bpe, word: sentencepiece pieces);
    the network is model.embedding_size, model.decoder (cell, hidden_size, num_layers, dropout)
    and model.tie_output; validation scores bits per character, lower is better."""
    text_suffix: str = "txt"  # DIR/PREFIX.<text_suffix>: continuous text, its lines joined by newlines
    batching: Literal["tbptt", "windows"] = "tbptt"  # tbptt: streams, state carried across segments; windows: shuffled, fresh state
    bptt_length: int = field(default=100, metadata=_range(1))  # units per segment (tbptt) or window (windows)
    streams: int = field(default=32, metadata=_range(1))  # parallel streams (tbptt) or windows per batch; validation's streams


@dataclass(frozen=True)
class TaggingConfig:
    """task: tagging (seq2seq/tasks/tagging/): CoNLL column files, the word and character features,
    CRF or softmax. The network is model.embedding_size (words), model.embedding_dropout and
    model.encoder; sentences are never cut, and validation scores entity F1."""
    suffix: str = "conll"  # DIR/PREFIX.<suffix>: a token a line, the word first, blank lines between sentences
    tag_column: int = -1  # the column of the tags, from 0; negative counts from the end (-1: CoNLL-2003's NER)
    file_scheme: Literal["iob1", "iob2"] = "iob1"  # how the files mark entity spans (CoNLL-2003: iob1)
    scheme: Literal["iob2", "iobes"] = "iob2"  # the tags the model learns; outputs are written in iob2 (BIO)
    min_count: int = field(default=1, metadata=_range(1))  # training words seen this often get an embedding; others UNK
    lowercase: bool = False  # words lowercased for the word vocabulary (the characters keep their case)
    word_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # training: a word becomes UNK with this chance
    char_encoder: bool = True  # a bidirectional RNN (model.encoder.cell) over each word's characters
    char_embedding_size: int = field(default=25, metadata=_range(1))
    char_hidden_size: int = field(default=25, metadata=_range(1))  # per direction; both final states join the word's
    crf: bool = True  # a linear-chain CRF over the tag scores; false: a softmax for each token


@dataclass(frozen=True)
class Recipe:
    name: str = "recipe"
    task: Literal["translation", "summarization", "classification", "language_model", "tagging"] = "translation"  # recorded in meta.json
    data: DataConfig = DataConfig()
    vocab: VocabConfig = VocabConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    decoding: DecodingConfig = DecodingConfig()
    classification: ClassificationConfig = ClassificationConfig()  # task: classification only
    language_model: LanguageModelConfig = LanguageModelConfig()  # task: language_model only
    tagging: TaggingConfig = TaggingConfig()  # task: tagging only


# ---------------------------------------------------------------- building from plain data


def _allowed(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )


def _show(value: Any, limit: int = 60) -> str:
    """repr for messages, cut to `limit` characters; ints too long for repr() are summarised."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits, maybe inside a list
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<too long>"
    return text if len(text) <= limit else text[:limit] + "..."


def _coerce(value: Any, tp: Any, key: str, meta: dict, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    ok = True
    if origin is Literal:
        ok = value in typing.get_args(tp)
        if not ok and isinstance(value, str):
            near = difflib.get_close_matches(value, [str(a) for a in typing.get_args(tp)], 1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            errors.append(f"{key}: {_show(value)} is not allowed{hint} (allowed: {_allowed(tp)})")
            return None
    elif origin is tuple:
        if isinstance(value, str):
            value = (value,)
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and abs(value) > _FLOAT32_MAX:  # (nan passes here; the range check below catches it)
            errors.append(f"{key}: {_show(value)} is out of range (must be a finite number "
                          "between -3.4e38 and 3.4e38)")
            return None
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        try:
            value = str(value) if ok else value
        except ValueError:  # an int too long to print
            ok = False
    if not ok:
        errors.append(f"{key}: expected {_allowed(tp)}, got {_show(value)}")
        return None
    lo, hi = meta.get("lo"), meta.get("hi")
    if tp is int and hi is None:
        hi = _INT64_MAX
    if lo is not None and (value != value or value < lo or (meta.get("lo_open") and value == lo)):  # nan
        op = ">" if meta.get("lo_open") else ">="
        errors.append(f"{key}: {_show(value)} is out of range (must be {op} {lo}" +
                      (f" and <= {hi})" if hi is not None else ")"))
    elif hi is not None and value > hi:
        errors.append(f"{key}: {_show(value)} is out of range (must be between {lo} and {hi})")
    return value


def _build(cls: type, raw: Any, path: str, errors: list[str]) -> Any:
    where = path or "the recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping of keys, got {_show(raw)}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, 1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            errors.append(f"{full}: unknown key; {hint}(valid keys: {', '.join(fields)})")
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            values[key] = _build(tp, value, full, errors)
        else:
            values[key] = _coerce(value, tp, full, dict(fields[key].metadata), errors)
    return cls(**{k: v for k, v in values.items() if v is not None})


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
    if m.tie_output and m.embedding_size != m.decoder.hidden_size:
        errors.append(f"model.tie_output: needs model.embedding_size ({m.embedding_size}) equal to "
                      f"model.decoder.hidden_size ({m.decoder.hidden_size})")
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


# what text classification leaves unused (decoding.batch_size sizes its batches too)
_SEQ2SEQ_ONLY = ("data.src", "data.tgt", "data.max_source_length", "data.max_target_length", "data.empty_lines",
                 *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")), "vocab.joint",
                 *_leaves("model.attention", AttentionConfig), *_leaves("model.decoder", DecoderConfig),
                 "model.tie_output", "model.share_embeddings", "model.copy", "training.coverage_weight",
                 "training.valid_metric", "training.teacher_forcing", "training.compile",
                 *(k for k in _leaves("decoding", DecodingConfig) if k != "decoding.batch_size"))


# what the language model leaves unused: its network is model.embedding_size, embedding_dropout,
# the decoder's cell, hidden_size, num_layers and dropout, tie_output and init
_LM_UNUSED = ("data.src", "data.tgt", "data.max_length", "data.max_source_length", "data.max_target_length",
              "data.long_lines", "data.empty_lines", *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")),
              "vocab.joint", *_leaves("model.encoder", EncoderConfig), *_leaves("model.attention", AttentionConfig),
              "model.decoder.input_feeding", "model.decoder.init", "model.share_embeddings", "model.copy",
              "training.coverage_weight", "training.valid_metric", "training.teacher_forcing", "training.batch_type",
              "training.batch_size", "training.compile", *_leaves("decoding", DecodingConfig))


# what the tagger leaves unused: its words come from tagging.min_count (no sentencepiece), its sentences
# are never cut, its network is model.embedding_size, embedding_dropout, encoder and init
_TAGGING_UNUSED = ("data.src", "data.tgt", "data.max_length", "data.max_source_length", "data.max_target_length",
                   "data.long_lines", "data.empty_lines", *(k for k in _leaves("data", DataConfig) if k.startswith("data.hub")),
                   *_leaves("vocab", VocabConfig), *_leaves("model.attention", AttentionConfig),
                   *_leaves("model.decoder", DecoderConfig), "model.tie_output", "model.share_embeddings", "model.copy",
                   "training.coverage_weight", "training.valid_metric", "training.teacher_forcing", "training.compile",
                   *(k for k in _leaves("decoding", DecodingConfig) if k != "decoding.batch_size"))


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


def recipe_from_dict(raw: Any, source: str = "recipe", warn: Callable[[str], None] | None = None) -> Recipe:
    """Build and check a Recipe from plain data; all problems are reported together. Settings
    the recipe's choices leave unused, and likely slips, are passed to `warn`, one line each."""
    errors: list[str] = []
    recipe = _build(Recipe, raw, "", errors)
    if not errors:
        _check(recipe, errors)
    if errors:
        raise UserError(f"{source}: " + "; ".join(errors))
    if warn is not None:
        for note in unused_settings(recipe, _given(raw)) + likely_slips(recipe):
            warn(note)
    return recipe


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.lr=0.5` -> (['training', 'lr'], 0.5); values are read as YAML scalars."""
    if "=" not in text:
        raise UserError(f"override {text!r}: expected key.path=value")
    key, _, value = text.partition("=")
    if not all(part.strip() for part in key.split(".")):
        raise UserError(f"override {text!r}: expected key.path=value (an empty key in {key.strip()!r})")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return raw


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error: YAML would keep the
    last silently (a second `training:` section drops the first)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{_show(key)} is given twice (also at line {seen[key]}); YAML "
                        "would keep the last only", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the safe loader's own error follows
                break
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: recipe file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read recipe ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: bytes are not UTF-8 ({e.reason})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{line} malformed YAML: {problem}") from None
    except RecursionError:
        raise UserError(f"{path}: malformed YAML: nested too deeply") from None


def load_recipe(path: str | Path, overrides: list[str] = (),
                warn: Callable[[str], None] | None = None) -> Recipe:
    """Read a YAML recipe, apply `key.path=value` overrides and check everything; `warn` gets
    one line per setting (from the file or an override) that the recipe's choices leave unused."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    return recipe_from_dict(apply_overrides(raw, list(overrides)), str(path), warn)


def to_dict(recipe: Recipe) -> dict:
    """Plain data for JSON; tuples become lists."""
    return dataclasses.asdict(recipe)


def recipe_value(recipe: Recipe, key: str) -> Any:
    """The plain value at a key path: a field ('data.test' -> a list) or a section (a dict)."""
    node: Any = to_dict(recipe)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            valid = list(node) if isinstance(node, dict) else []
            near = difflib.get_close_matches(part, valid, 1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            listed = f"(valid keys: {', '.join(valid)})" if valid else "(a value has no keys)"
            raise UserError(f"{key}: unknown key; {hint}{listed}")
        node = node[part]
    return node
