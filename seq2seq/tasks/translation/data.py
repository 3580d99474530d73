"""Parallel text: the files of a split, checked reading, an Arrow-backed corpus (datasets); the
trainer batches it by length (seq2seq/batch.py, make_batches).

Every pair is kept in the Arrow table with a status (ok, empty, too long); batches draw only from
the usable ones, and the counts are reported from the same table, so they survive the cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from seq2seq.config import DataConfig, Recipe
from seq2seq.errors import UserError
from seq2seq.hub import hub_files, uses_hub
from seq2seq.lines import iter_lines
from seq2seq.tasks.translation.extended import cut_sources, encode_sources, extend_targets
from seq2seq.vocab import Vocab

OK, EMPTY, TOO_LONG, TRUNCATED = 0, 1, 2, 3
# Part of the Arrow cache key: datasets hashes _generate's own code, not the helpers it calls, so
# a change in what they produce (encode_pairs, extended.py) must bump this.
CACHE_VERSION = 2


def data_files(recipe: Recipe, prefix: str) -> tuple[Path, Path]:
    """The source and target files of a split; a missing one is named with what to put there."""
    d = recipe.data
    if uses_hub(d):  # data.hub: the split is written into data.dir from a data set by name first
        return hub_files(d, prefix)
    files = Path(d.dir) / f"{prefix}.{d.src}", Path(d.dir) / f"{prefix}.{d.tgt}"
    for f in files:
        if not f.is_file():
            what = "is not a file" if f.exists() else "not found"
            raise UserError(f"{f}: {what} (data.dir={d.dir!r}); put the {prefix!r} split there as "
                            f"{prefix}.{d.src} and {prefix}.{d.tgt}, one sentence per line")
    return files


def check_parallel(src: Path, tgt: Path) -> int:
    """Both files readable, UTF-8, non-empty and of equal line count; returns that count."""
    counts = []
    for path in (src, tgt):
        n = 0
        for n, _ in iter_lines(path):
            pass
        if n == 0:
            raise UserError(f"{path}: file is empty")
        counts.append(n)
    if counts[0] != counts[1]:
        raise UserError(f"{src} has {counts[0]} lines but {tgt} has {counts[1]}: "
                        "parallel files must pair line i with line i")
    return counts[0]


def check_no_empty_pairs(src: Path, tgt: Path) -> None:
    """For data.empty_lines 'error': a pair with an empty side is an error naming its line."""
    for (number, s), (_, t) in zip(iter_lines(src), iter_lines(tgt)):
        if not s.strip() or not t.strip():
            raise UserError(f"{src} / {tgt}:{number}: empty line (data.empty_lines is 'error')")


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def encode_pairs(src_vocab: Vocab, tgt_vocab: Vocab, src: list[str], tgt: list[str], copy: bool,
                 source_limit: int = 0, target_limit: int = 0):
    """(source ids, target ids, oovs, cut) of parallel lines, each side cut to its limit (0: not
    cut); cut[i] is (source pieces, target pieces) that line i lost. With copy, the extended ids
    come from the cut source (extended.py): a target piece that only the cut part held
    is UNK; oovs is each cut source's list of extended pieces, else None."""
    src_ids, oovs = encode_sources(src_vocab, src, copy)
    src_cut = [max(0, len(s) - source_limit) if source_limit else 0 for s in src_ids]
    if source_limit:
        src_ids, oovs = cut_sources(src_ids, oovs, source_limit, len(src_vocab))
    tgt_ids = tgt_vocab.encode(tgt) if oovs is None else extend_targets(tgt_vocab, tgt, oovs)
    tgt_cut = [max(0, len(t) - target_limit) if target_limit else 0 for t in tgt_ids]
    if target_limit:
        tgt_ids = [t[:target_limit] for t in tgt_ids]
    return src_ids, tgt_ids, oovs, list(zip(src_cut, tgt_cut))


def _generate(src, tgt, src_spm, tgt_spm, max_source, max_target, long_lines, copy=False, chunk=2000,
              **_):
    src_vocab, tgt_vocab = Vocab(src_spm), Vocab(tgt_spm)
    pairs = zip(iter_lines(Path(src)), iter_lines(Path(tgt)))
    while True:
        block = [(s, t) for (_, s), (_, t) in (p for _, p in zip(range(chunk), pairs))]
        if not block:
            return
        src_ids, tgt_ids, _, cuts = encode_pairs(src_vocab, tgt_vocab, [s for s, _ in block],
                                                 [t for _, t in block], copy, max_source, max_target)
        for (s, t), a, b, (src_cut, tgt_cut) in zip(block, src_ids, tgt_ids, cuts):
            status = OK
            if not s.strip() or not t.strip():
                status, src_cut, tgt_cut = EMPTY, 0, 0
            elif src_cut or tgt_cut:
                status = TOO_LONG if long_lines == "skip" else TRUNCATED
            yield {"src": a, "tgt": b, "status": status, "src_cut": src_cut, "tgt_cut": tgt_cut}


@dataclass
class Corpus:
    """Tokenised pairs in an Arrow table, plus the lengths the batcher needs."""

    table: datasets.Dataset
    usable: np.ndarray  # indices of pairs that may be trained on
    src_lengths: np.ndarray  # (N,) over all pairs
    tgt_lengths: np.ndarray

    def stats(self) -> dict[str, int]:
        status = np.asarray(self.table["status"])
        return {"pairs": len(status), "used": int((status == OK).sum() + (status == TRUNCATED).sum()),
                "empty_skipped": int((status == EMPTY).sum()),
                "too_long_skipped": int((status == TOO_LONG).sum()),
                "truncated": int((status == TRUNCATED).sum())}

    def cuts(self) -> dict[str, int]:
        """What truncation removed from the pairs used: sentences cut and pieces cut, per side."""
        truncated = np.asarray(self.table["status"]) == TRUNCATED  # (skipped pairs are not cut)
        out = {}
        for side in ("src", "tgt"):
            cut = np.asarray(self.table[f"{side}_cut"])[truncated]
            out[f"{side}_truncated"], out[f"{side}_pieces_cut"] = int((cut > 0).sum()), int(cut.sum())
        return out

    def report(self, cfg: DataConfig) -> list[str]:
        """The start-up lines: pairs used, skipped and cut, with the limits that applied."""
        s, src_limit, tgt_limit = self.stats(), cfg.source_limit, cfg.target_limit
        limits = (f"{src_limit} pieces" if src_limit == tgt_limit else
                  f"{src_limit} source / {tgt_limit} target pieces")
        skip = cfg.long_lines == "skip"
        lines = [f"data: {s['used']} of {s['pairs']} training pairs used; {s['empty_skipped']} empty "
                 f"skipped, {s['too_long_skipped']} too long skipped{f' (over {limits})' if skip else ''}, "
                 f"{s['truncated']} truncated{'' if skip else f' to {limits}'}"]
        if s["truncated"]:
            c = self.cuts()
            lines.append(f"data: {c['src_truncated']} sources cut to {src_limit} pieces "
                         f"({c['src_pieces_cut']} pieces dropped), {c['tgt_truncated']} targets cut to "
                         f"{tgt_limit} ({c['tgt_pieces_cut']} dropped)")
        return lines

    def pairs(self, indices) -> tuple[list[list[int]], list[list[int]]]:
        rows = self.table[list(map(int, indices))]
        return rows["src"], rows["tgt"]


def load_corpus(src: Path, tgt: Path, src_vocab: Vocab, tgt_vocab: Vocab, cfg: DataConfig,
                copy: bool = False, check: bool = True) -> Corpus:
    """Check, tokenise and cache a parallel corpus (Arrow, so it need not fit in memory); with
    `copy`, source-only pieces get extended ids (extended.py). `check=False` skips the
    line-count check for files a caller has already checked."""
    if check:
        check_parallel(src, tgt)
    kwargs = dict(src=str(src), tgt=str(tgt), src_spm=str(src_vocab.path), tgt_spm=str(tgt_vocab.path),
                  max_source=cfg.source_limit, max_target=cfg.target_limit, long_lines=cfg.long_lines,
                  copy=copy,
                  key="|".join([f"v{CACHE_VERSION}", _fingerprint(src),  # (lists would be sharded)
                                _fingerprint(tgt), hashlib.sha256(src_vocab.path.read_bytes()).hexdigest(),
                                hashlib.sha256(tgt_vocab.path.read_bytes()).hexdigest()]))
    datasets.disable_progress_bars()
    features = datasets.Features({"src": datasets.Sequence(datasets.Value("int32")),
                                  "tgt": datasets.Sequence(datasets.Value("int32")),
                                  "status": datasets.Value("int8"),
                                  "src_cut": datasets.Value("int32"), "tgt_cut": datasets.Value("int32")})
    table = datasets.Dataset.from_generator(_generate, features=features, gen_kwargs=kwargs)
    status = np.asarray(table["status"])
    if cfg.empty_lines == "error" and (status == EMPTY).any():
        line = int(np.argmax(status == EMPTY)) + 1
        raise UserError(f"{src} / {tgt}:{line}: empty line (data.empty_lines is 'error')")
    src_len = np.fromiter((len(x) for x in table["src"]), dtype=np.int64, count=len(table))
    tgt_len = np.fromiter((len(x) for x in table["tgt"]), dtype=np.int64, count=len(table))
    usable = np.flatnonzero((status == OK) | (status == TRUNCATED))
    if len(usable) == 0:
        raise UserError(f"{src} / {tgt}: no usable sentence pairs (all empty or too long)")
    return Corpus(table, usable, src_len, tgt_len)
