"""Subword vocabularies: sentencepiece models trained by the toolkit, stored in the model directory."""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm
from tqdm import tqdm

from seq2seq.checkpoint import META, VOCAB_JOINT, VOCAB_SRC, VOCAB_TGT
from seq2seq.config import VocabConfig
from seq2seq.errors import UserError

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Vocab:
    """One sentencepiece model: text <-> ids, with pad 0, unk 1, bos 2, eos 3."""

    def __init__(self, model_file: str | Path):
        self.path = Path(model_file)
        try:
            self.sp = spm.SentencePieceProcessor(model_proto=self.path.read_bytes())
        except FileNotFoundError:
            raise UserError(f"{self.path}: sentencepiece model not found") from None
        except (OSError, RuntimeError) as e:
            raise UserError(f"{self.path}: not a readable sentencepiece model ({e})") from None
        ids = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if ids != (PAD, UNK, BOS, EOS):
            raise UserError(f"{self.path}: special ids are {ids}, expected (0, 1, 2, 3)")

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, lines: list[str]) -> list[list[int]]:
        return self.sp.encode(lines)

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Id lists -> text. PAD, BOS and EOS are dropped; UNK is written as sentencepiece writes
        it, '⁇' (U+2047), a word of its own: one space either side, none at the line's ends."""
        ids = [[i for i in seq if i > EOS or i == UNK] for seq in ids]
        return [_unk_apart(t) if UNK in seq else t for seq, t in zip(ids, self.sp.decode(ids))]

    def decode_pieces(self, pieces: list[str]) -> str:
        """Pieces -> text; a piece outside the vocabulary is written as it is, UNK as in decode."""
        text = self.sp.decode_pieces(pieces)
        return _unk_apart(text) if self.sp.id_to_piece(UNK) in pieces else text

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.sp.id_to_piece(i) for i in ids]


def _unk_apart(text: str) -> str:
    """sentencepiece writes UNK as ' ⁇ ' (spaces included): single spaces, none at the ends."""
    return " ".join(text.split())


def _longest_line(files: list[Path]) -> int:
    """Bytes in the longest line of the files."""
    longest = 0
    for path in files:
        with open(path, "rb") as f:
            longest = max(longest, max(map(len, f), default=0))
    return longest


def user_symbols(symbols: tuple[str, ...]) -> list[str]:
    """sentencepiece's user_defined_symbols for vocab.symbols: each symbol as it is and in its
    word-initial form ('▁' + symbol), so that a symbol after a space is one piece, not a lone '▁'
    and the symbol (the longest match wins). A symbol holding whitespace could never match."""
    for s in symbols:
        if not s or any(c.isspace() for c in s) or s.startswith("▁"):
            raise UserError(f"vocab.symbols: {s!r} is not a symbol: one word, without spaces or a "
                            f"leading '▁' (the word-initial form is added)")
    return [form for s in dict.fromkeys(symbols) for form in ("▁" + s, s)]


def train_sentencepiece(files: list[Path], prefix: Path, cfg: VocabConfig, verbatim: bool = False) -> Vocab:
    """Train a model on `files` (one sentence per line) into `prefix`.model / .vocab; every line
    counts, however long; fewer pieces than vocab.size (all the data holds) are said in a line.
    vocab.symbols are pieces of their own (user_symbols).
    `verbatim`: pieces spell the text exactly as written (no normalisation, spaces kept, no
    dummy prefix), so decode(encode(line)) == line for every known character (language models);
    otherwise the text is normalised by vocab.normalization (sentencepiece's rule, kept in the model,
    so what is encoded later is normalised alike)."""
    exact = dict(normalization_rule_name="identity", remove_extra_whitespaces=False,
                 add_dummy_prefix=False) if verbatim else dict(normalization_rule_name=cfg.normalization)
    try:
        spm.SentencePieceTrainer.train(
            input=[str(f) for f in files],
            model_prefix=str(prefix),
            model_type=cfg.model_type,
            vocab_size=cfg.size,
            character_coverage=cfg.character_coverage,
            input_sentence_size=cfg.max_sentences,
            shuffle_input_sentence=True,
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            minloglevel=2,
            num_threads=2,
            hard_vocab_limit=False,  # small corpora: fewer pieces rather than an error
            max_sentence_length=max(4192, _longest_line(files)),  # (its default skips longer lines)
            user_defined_symbols=user_symbols(cfg.symbols),
            **exact,
        )
    except (RuntimeError, ValueError) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        msg = msg.rpartition("] ")[2] or msg  # drop sentencepiece's source location and check
        raise UserError(f"vocab.size: sentencepiece could not train a {cfg.size}-piece "
                        f"{cfg.model_type} model on {', '.join(map(str, files))}: {msg}") from None
    vocab = Vocab(f"{prefix}.model")
    if len(vocab) < cfg.size:
        tqdm.write(f"warning: vocab.size is {cfg.size}, but the {cfg.model_type} model of "
                   f"{', '.join(map(str, files))} has {len(vocab)} pieces (sentencepiece found no more)")
    return vocab


def vocab_files(model_dir: Path, joint: bool) -> tuple[Path, Path]:
    """Where the source and target sentencepiece models live in a model directory."""
    if joint:
        return model_dir / f"{VOCAB_JOINT}.model", model_dir / f"{VOCAB_JOINT}.model"
    return model_dir / f"{VOCAB_SRC}.model", model_dir / f"{VOCAB_TGT}.model"


def build_vocabs(src_file: Path, tgt_file: Path, model_dir: Path, cfg: VocabConfig) -> tuple[Vocab, Vocab]:
    """Train the recipe's sentencepiece model(s) into the model directory."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if cfg.joint:
        v = train_sentencepiece([src_file, tgt_file], model_dir / VOCAB_JOINT, cfg)
        return v, v
    return (train_sentencepiece([src_file], model_dir / VOCAB_SRC, cfg),
            train_sentencepiece([tgt_file], model_dir / VOCAB_TGT, cfg))


def load_vocabs(model_dir: Path, joint: bool, meta: dict | None = None) -> tuple[Vocab, Vocab]:
    """The model directory's vocabularies; with `meta`, their sizes must be the ones it records."""
    src, tgt = vocab_files(model_dir, joint)
    v = Vocab(src)
    vocabs = (v, v) if joint else (v, Vocab(tgt))
    for vocab, key in zip(vocabs, ("src_vocab_size", "tgt_vocab_size")):
        if meta is not None and len(vocab) != meta[key]:
            raise UserError(f"{vocab.path}: {len(vocab)} pieces, but {META} says {key} "
                            f"{meta[key]}; the model directory mixes files of different models")
    return vocabs
