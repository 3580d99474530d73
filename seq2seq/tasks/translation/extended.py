"""The extended vocabulary of copying: an id for each source-only piece of a sentence.

With sentencepiece, 'a word never seen in training' is a piece the model maps to UNK (a character
outside the vocabulary, or a whole unknown word for `model_type: word`). Each distinct UNK piece of
a source sentence gets its own id V, V+1, ... (See et al. 2017 give each article OOV its own id in
the same way), kept with its surface text; a target piece that is UNK but appears among them gets
the same id, so the model learns to copy it. Decoding maps the ids back to the source text.

    ext = extend_sources(vocab, ["Zürich is big"])[0]   # ext.ids: ..., V (for 'ü'), ...
    extend_targets(vocab, ["Zürich"], [ext.oovs])       # 'ü' -> V as well
    decode_extended(vocab, [ids], [ext.oovs])           # V -> 'ü'
"""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.vocab import EOS, UNK, Vocab


@dataclass
class Extended:
    ids: list[int]  # piece ids, UNK pieces replaced by V + k
    oovs: list[str]  # oovs[k]: the source text of id V + k


def _pieces_and_ids(vocab: Vocab, lines: list[str]) -> list[list[tuple[str, int]]]:
    """Each line as (surface piece, id) pairs; an UNK piece's surface is the text it covers."""
    pieces = vocab.sp.encode(lines, out_type=str)
    ids = vocab.encode(lines)
    return [list(zip(p, i)) for p, i in zip(pieces, ids)]


def extend_sources(vocab: Vocab, lines: list[str]) -> list[Extended]:
    """Source lines -> ids where each distinct UNK piece of a line has its own id >= V."""
    size, out = len(vocab), []
    for pairs in _pieces_and_ids(vocab, lines):
        oovs: list[str] = []
        ids = []
        for piece, i in pairs:
            if i == UNK:
                if piece not in oovs:
                    oovs.append(piece)
                i = size + oovs.index(piece)
            ids.append(i)
        out.append(Extended(ids, oovs))
    return out


def encode_sources(vocab: Vocab, lines: list[str], copy: bool) -> tuple[list[list[int]], list[list[str]] | None]:
    """(ids, oovs): with copy, extended ids and each line's source-only pieces; else plain ids
    and None."""
    if not copy:
        return vocab.encode(lines), None
    ext = extend_sources(vocab, lines)
    return [e.ids for e in ext], [e.oovs for e in ext]


def cut_sources(ids: list[list[int]], oovs: list[list[str]] | None, limit: int,
                size: int) -> tuple[list[list[int]], list[list[str]] | None]:
    """Sources cut to `limit` pieces, each with the extended pieces still in it. Extended ids are
    given in order of first appearance, so those are the first (largest id - size + 1) of its
    oovs: a target extended afterwards (extend_targets) gets ids only for what the cut source
    can copy, and a piece whose source occurrence was cut away stays UNK."""
    ids = [s[:limit] for s in ids]
    if oovs is None:
        return ids, None
    return ids, [o[:max((i - size + 1 for i in s if i >= size), default=0)] for s, o in zip(ids, oovs)]


def extend_targets(vocab: Vocab, lines: list[str], oovs: list[list[str]]) -> list[list[int]]:
    """Target lines -> ids; an UNK piece found among its source's oovs gets that extended id."""
    size, out = len(vocab), []
    for pairs, known in zip(_pieces_and_ids(vocab, lines), oovs):
        out.append([size + known.index(p) if i == UNK and p in known else i for p, i in pairs])
    return out


def decode_extended(vocab: Vocab, ids: list[list[int]], oovs: list[list[str]] | None) -> list[str]:
    """Id lists (extended ids allowed) -> text; an extended id becomes its source text. An id
    beyond its sentence's extras is UNK, and UNK is written as Vocab.decode writes it: '⁇', a
    word of its own. oovs None (no copy): plain decoding."""
    if oovs is None:
        return vocab.decode(ids)
    size, out = len(vocab), []
    for seq, known in zip(ids, oovs):
        seq = [i if i < size + len(known) else UNK for i in seq]
        if all(i < size for i in seq):
            out.extend(vocab.decode([seq]))
            continue
        pieces = []
        for i in seq:
            if i >= size:  # decode_pieces writes a piece it does not know as it is, so its '▁'
                # (a space before it) becomes one here, except at the start, as sentencepiece does
                piece = known[i - size]
                piece = piece.removeprefix("\u2581") if not pieces else piece
                pieces.append(piece.replace("\u2581", " "))
            elif i > EOS or i == UNK:
                pieces.append(vocab.sp.id_to_piece(i))
        out.append(vocab.decode_pieces(pieces))
    return out
