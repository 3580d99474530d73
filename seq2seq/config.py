"""Recipes: frozen dataclasses that hold every default, one comment per field.

A recipe lists only what it changes. Reading one (YAML, overrides, types and ranges) is
seq2seq/recipe_io.py; the rules between fields and the warnings are seq2seq/recipe_check.py.
`load_recipe` and `recipe_from_dict` are imported here too, so `from seq2seq.config import ...`
gives the whole recipe API.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from seq2seq.errors import UserError

Cell = Literal["rnn", "gru", "lstm", "peephole_lstm", "wm_lstm"]  # see seq2seq/modules/cells.py
_INT32_MAX = 2**31 - 1  # (every other integer is bounded by int64: recipe_io.py)


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
    normalization: Literal["nmt_nfkc", "nmt_nfkc_cf", "nfkc", "nfkc_cf", "identity"] = "nmt_nfkc"  # sentencepiece's rule; *_cf fold case (outputs come out lowercased)
    symbols: tuple[str, ...] = ()  # words always one piece (e.g. DialogSum's #Person1#): seq2seq/vocab.py


@dataclass(frozen=True)
class EncoderConfig:
    cell: Cell = "gru"
    hidden_size: int = field(default=256, metadata=_range(1))  # per direction
    num_layers: int = field(default=1, metadata=_range(1))
    bidirectional: bool = True
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # between layers; with dropout_io also on input and output
    dropout_io: bool = True  # false: between layers only (JoeyNMT's, whose input dropout is model.embedding_dropout)
    layer_norm: bool = False  # inside the cell (Ba et al. 2016, as Nematus): seq2seq/modules/cells.py; not rnn


@dataclass(frozen=True)
class AttentionConfig:
    type: Literal["bahdanau", "dot", "general", "concat"] = "bahdanau"
    hidden_size: int = field(default=0, metadata=_range(0))  # score layer width; 0: decoder size
    coverage: bool = False  # past attention summed into the score (See et al. 2017); additive only
    scaled: bool = False  # dot/general: scores / sqrt(query size) (Vaswani et al. 2017)


@dataclass(frozen=True)
class DecoderConfig:
    type: Literal["recurrent", "conditional"] = "recurrent"  # see seq2seq/modules/decoder.py, conditional.py
    cell: Cell = "gru"
    hidden_size: int = field(default=512, metadata=_range(1))
    num_layers: int = field(default=1, metadata=_range(1))  # type conditional: 1
    dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # between layers, on the attentional layer's input
    output_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on the output layer's input
    feed_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on the fed-back attentional vector (JoeyNMT's)
    input_feeding: bool = True  # feed the last attentional vector to the next step
    init: Literal["bridge", "last", "zero"] = "bridge"  # initial state from the encoder
    layer_norm: bool = False  # inside the cell(s), as model.encoder.layer_norm; not rnn


@dataclass(frozen=True)
class ModelConfig:
    embedding_size: int = field(default=256, metadata=_range(1))
    embedding_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # on each embedded unit
    source_word_dropout: float = field(default=0.0, metadata=_range(0.0, 1.0))  # whole source pieces, scaled
    encoder: EncoderConfig = EncoderConfig()
    attention: AttentionConfig = AttentionConfig()
    decoder: DecoderConfig = DecoderConfig()
    tie_output: bool = False  # output layer shares the target embedding matrix
    share_embeddings: bool = False  # source and target share one embedding (joint vocab); + tie_output: 3-way
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
    # a time budget: stop after the step at which the steps' own time reaches it (the `done:` line's
    # training minutes, resumed runs included; validation and saving not counted); 0: no limit
    max_minutes: float = field(default=0.0, metadata=_range(0.0))
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
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # bf16: autocast, weights and loss fp32; auto: device.py
    compile: bool = False  # torch.compile the decoder step (tasks/translation/compiling.py)
    threads: int = field(default=0, metadata=_range(0, 1024))  # CPU threads; 0: all cores
    # key=value overrides of a last phase that the recipe scripts train after this run, from its best
    # weights (seq2seq-train --init-from); seq2seq-train alone trains this first phase only
    last_phase: tuple[str, ...] = ()
    dist_timeout_minutes: float = field(default=60.0, metadata=_range(0.0, lo_open=True))  # torchrun: collective timeout


@dataclass(frozen=True)
class DecodingConfig:
    beam_size: int = field(default=5, metadata=_range(1))  # 1: greedy
    length_penalty: float = field(default=1.0, metadata=_range(0.0))  # GNMT alpha
    # max = ratio * S + offset (bounded so that it stays an int64 for any source)
    max_length_ratio: float = field(default=1.5, metadata=_range(0.0, 1e6, lo_open=True))
    max_length_offset: int = field(default=10, metadata=_range(0, _INT32_MAX))
    nbest: int = field(default=1, metadata=_range(1))
    batch_size: int = field(default=0, metadata=_range(0))  # sentences; 0: sentences_per_batch's
    min_length: int = field(default=0, metadata=_range(0))  # tokens before EOS may come
    max_length: int = field(default=0, metadata=_range(0))  # hard cap on output tokens; 0: none
    no_repeat_ngram_size: int = field(default=0, metadata=_range(0))  # 0: no blocking
    coverage_penalty: float = field(default=0.0, metadata=_range(0.0))  # GNMT beta; beam only
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"  # int8: CPU only; auto: device.py DECODING_AUTO

    def sentences_per_batch(self, greedy: bool = False) -> int:
        """batch_size, or where it is 0: 320 sentences for greedy search, 64 for beam and sampling
        search and the other tasks. Greedy's matmuls are then as tall as 64 sentences' beams of 5,
        and a decoding step, which on a CPU reads the output layer's weights from memory, reads them
        once for 320 rows instead of 64 (Multi30k test, fp32, Zen 3: 198 against 121 sentences/s)."""
        return self.batch_size or (320 if greedy else 64)


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
    the network is model.embedding_size, model.decoder (cell, layer_norm, hidden_size, num_layers, dropout)
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


# the reading and checking, importable from here as before; at the end, since they need the classes above
from seq2seq.recipe_check import likely_slips, unused_settings  # noqa: E402, F401
from seq2seq.recipe_io import apply_overrides, load_recipe, parse_override, read_yaml, recipe_from_dict  # noqa: E402, F401
