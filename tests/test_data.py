"""Reading parallel text (checked), the Arrow corpus and its counts, batching (collation: test_batch.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seq.batch import make_batches
from seq2seq.config import DataConfig
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.tasks.translation.data import check_parallel, load_corpus


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def corpus_files(tmp_path, src_lines, tgt_lines):
    return write_lines(tmp_path / "c.src", src_lines), write_lines(tmp_path / "c.tgt", tgt_lines)


# ---------------------------------------------------------------- batching


def cost(batch, src, tgt, batch_type):
    longest = max(max(int(src[i]), int(tgt[i]) + 1) for i in batch)
    return len(batch) * longest if batch_type == "tokens" else len(batch)


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.booleans()), max_size=60),
       budget=st.integers(1, 150), batch_type=st.sampled_from(["tokens", "sentences"]),
       seed=st.one_of(st.none(), st.integers(0, 2**16)))
def test_make_batches_respects_budget_and_covers_each_index_once(lengths, budget, batch_type, seed):
    src = np.array([s for s, _, _ in lengths], dtype=np.int64)
    tgt = np.array([t for _, t, _ in lengths], dtype=np.int64)
    indices = np.array([i for i, (_, _, keep) in enumerate(lengths) if keep], dtype=np.int64)
    rng = None if seed is None else np.random.default_rng(seed)
    batches = make_batches(indices, src, tgt, budget, batch_type, rng)

    flat = np.concatenate(batches).tolist() if batches else []
    assert sorted(flat) == indices.tolist()  # every usable index exactly once, nothing else
    for b in batches:
        assert len(b) >= 1
        if len(b) > 1:  # a single sentence may exceed the budget on its own
            assert cost(b, src, tgt, batch_type) <= budget
    if rng is None:  # in length order, each batch is as full as the budget allows
        for b, nxt in zip(batches, batches[1:]):
            assert cost(list(b) + [nxt[0]], src, tgt, batch_type) > budget


def test_make_batches_sorts_by_length_without_rng():
    src = np.array([3, 1, 2, 5, 9])
    tgt = np.array([2, 1, 4, 5, 0])
    batches = make_batches(np.array([0, 1, 2, 3]), src, tgt, 2, "sentences")
    assert [b.tolist() for b in batches] == [[1, 0], [2, 3]]
    # tokens: longest side + 1 for EOS; [1, 0] costs 2 * 3 = 6, adding 2 costs 3 * 5 = 15
    batches = make_batches(np.array([0, 1, 2, 3]), src, tgt, 10, "tokens")
    assert [b.tolist() for b in batches] == [[1, 0], [2], [3]]


def test_make_batches_shuffle_depends_only_on_seed():
    src = np.arange(40) % 7
    tgt = np.arange(40) % 5
    a = make_batches(np.arange(40), src, tgt, 4, "sentences", np.random.default_rng(3))
    b = make_batches(np.arange(40), src, tgt, 4, "sentences", np.random.default_rng(3))
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert make_batches(np.array([], dtype=np.int64), src, tgt, 4, "tokens") == []


# ---------------------------------------------------------------- checked reading


def test_check_parallel_counts_lines(tmp_path):
    src, tgt = corpus_files(tmp_path, ["a", "b", "c"], ["x", "y", "z"])
    assert check_parallel(src, tgt) == 3


def test_mismatched_line_counts_name_both_files(tmp_path):
    src, tgt = corpus_files(tmp_path, ["a", "b", "c"], ["x", "y"])
    with pytest.raises(UserError) as info:
        check_parallel(src, tgt)
    msg = str(info.value)
    assert str(src) in msg and str(tgt) in msg and "3" in msg and "2" in msg


def test_missing_file_is_named(tmp_path):
    src = write_lines(tmp_path / "c.src", ["a"])
    with pytest.raises(UserError, match="not found") as info:
        check_parallel(src, tmp_path / "missing.tgt")
    assert str(tmp_path / "missing.tgt") in str(info.value)
    with pytest.raises(UserError, match="missing.src"):
        read_lines(tmp_path / "missing.src")


def test_empty_file_is_named(tmp_path):
    src = write_lines(tmp_path / "c.src", ["a"])
    (tmp_path / "c.tgt").write_bytes(b"")
    with pytest.raises(UserError, match="empty") as info:
        check_parallel(src, tmp_path / "c.tgt")
    assert str(tmp_path / "c.tgt") in str(info.value)
    with pytest.raises(UserError, match="empty"):
        read_lines(tmp_path / "c.tgt")


def test_non_utf8_names_file_and_line(tmp_path):
    src = write_lines(tmp_path / "c.src", ["a", "b", "c"])
    (tmp_path / "c.tgt").write_bytes(b"x\ny\xff\xfe\nz\n")
    with pytest.raises(UserError, match="not UTF-8") as info:
        check_parallel(src, tmp_path / "c.tgt")
    assert f"{tmp_path / 'c.tgt'}:2:" in str(info.value)
    with pytest.raises(UserError, match=r"c\.tgt:2:"):
        read_lines(tmp_path / "c.tgt")


def test_read_lines_strips_newlines_only(tmp_path):
    (tmp_path / "f").write_bytes(b" a b \r\n\nc")
    assert read_lines(tmp_path / "f") == [" a b ", "", "c"]


# ---------------------------------------------------------------- corpus


def test_empty_lines_are_skipped_and_counted(tmp_path, char_vocab):
    src, tgt = corpus_files(tmp_path, ["abc", "", "de", "fgh", "  "], ["cba", "x", "", "hgf", "y"])
    corpus = load_corpus(src, tgt, char_vocab, char_vocab, DataConfig())
    assert corpus.stats() == {"pairs": 5, "used": 2, "empty_skipped": 3, "too_long_skipped": 0,
                              "truncated": 0}
    assert corpus.usable.tolist() == [0, 3]
    s, t = corpus.pairs(corpus.usable)
    assert s == char_vocab.encode(["abc", "fgh"]) and t == char_vocab.encode(["cba", "hgf"])
    assert corpus.src_lengths[0] == len(char_vocab.encode(["abc"])[0])


def test_empty_lines_error_names_line(tmp_path, char_vocab):
    src, tgt = corpus_files(tmp_path, ["abc", "de", ""], ["cba", "ed", "x"])
    with pytest.raises(UserError, match=r":3: empty line"):
        load_corpus(src, tgt, char_vocab, char_vocab, DataConfig(empty_lines="error"))


def test_no_usable_pairs_is_an_error(tmp_path, char_vocab):
    src, tgt = corpus_files(tmp_path, ["", "a"], ["x", ""])
    with pytest.raises(UserError, match="no usable"):
        load_corpus(src, tgt, char_vocab, char_vocab, DataConfig())


@pytest.mark.parametrize("long_lines", ["truncate", "skip"])
def test_long_lines_truncated_or_skipped(tmp_path, char_vocab, long_lines):
    # the char model writes 'abc' as [▁, a, b, c]: 4 pieces
    src, tgt = corpus_files(tmp_path, ["abc", "abcdefgh", "ab"], ["cba", "hg", "abcdefgh"])
    corpus = load_corpus(src, tgt, char_vocab, char_vocab, DataConfig(max_length=4, long_lines=long_lines))
    stats = corpus.stats()
    if long_lines == "truncate":
        assert stats == {"pairs": 3, "used": 3, "empty_skipped": 0, "too_long_skipped": 0, "truncated": 2}
        assert corpus.usable.tolist() == [0, 1, 2]
        s, t = corpus.pairs([1, 2])
        assert s == [char_vocab.encode(["abcdefgh"])[0][:4], char_vocab.encode(["ab"])[0]]
        assert t[1] == char_vocab.encode(["abcdefgh"])[0][:4]
    else:
        assert stats == {"pairs": 3, "used": 1, "empty_skipped": 0, "too_long_skipped": 2, "truncated": 0}
        assert corpus.usable.tolist() == [0]
    assert max(corpus.src_lengths.max(), corpus.tgt_lengths.max()) <= 4


def test_corpus_cache_follows_file_changes(tmp_path, char_vocab):
    src, tgt = corpus_files(tmp_path, ["abc", "de"], ["cba", "ed"])
    first = load_corpus(src, tgt, char_vocab, char_vocab, DataConfig())
    write_lines(src, ["fgh", "de"])  # same size, new content
    st_ = os.stat(src)
    os.utime(src, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    second = load_corpus(src, tgt, char_vocab, char_vocab, DataConfig())
    assert first.pairs([0])[0] != second.pairs([0])[0]
    assert second.pairs([0])[0] == char_vocab.encode(["fgh"])


# ---------------------------------------------------------------- what was cut, reported


LONG_SRC = ["abc", "abcdefgh", "ab", "a"]  # pieces: 4, 9, 3, 2
LONG_TGT = ["cba", "hg", "abcdefgh", "abcdef"]  # pieces: 4, 3, 9, 7


@pytest.mark.parametrize("long_lines", ["truncate", "skip"])
def test_cut_counts_and_report_name_the_limits_that_applied(tmp_path, char_vocab, long_lines):
    """max_source_length 3 (not max_length 8) cuts sources; max_length cuts targets. Skipped
    pairs are not counted as cut."""
    src, tgt = corpus_files(tmp_path, LONG_SRC, LONG_TGT)
    cfg = DataConfig(max_length=8, max_source_length=3, long_lines=long_lines)
    corpus = load_corpus(src, tgt, char_vocab, char_vocab, cfg)
    lines = corpus.report(cfg)
    if long_lines == "truncate":
        assert corpus.cuts() == {"src_truncated": 2, "src_pieces_cut": 1 + 6, "tgt_truncated": 1,
                                 "tgt_pieces_cut": 1}
        assert lines == ["data: 4 of 4 training pairs used; 0 empty skipped, 0 too long skipped, "
                         "3 truncated to 3 source / 8 target pieces",
                         "data: 2 sources cut to 3 pieces (7 pieces dropped), 1 targets cut to 8 "
                         "(1 dropped)"]
    else:
        assert corpus.cuts() == {"src_truncated": 0, "src_pieces_cut": 0, "tgt_truncated": 0,
                                 "tgt_pieces_cut": 0}
        assert lines == ["data: 1 of 4 training pairs used; 0 empty skipped, 3 too long skipped "
                         "(over 3 source / 8 target pieces), 0 truncated"]


def test_training_reports_the_limits_that_applied(tmp_path, make_tiny_recipe, capsys):
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks import train

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        write_lines(data / f"{split}.src", LONG_SRC * 4)
        write_lines(data / f"{split}.tgt", LONG_TGT * 4)
    recipe = make_tiny_recipe(data)
    recipe["data"].update(max_length=8, max_source_length=3)
    recipe["training"].update(max_steps=1)
    train(recipe_from_dict(recipe), tmp_path / "m")
    out = capsys.readouterr().out
    assert "12 truncated to 3 source / 8 target pieces\n" in out
    assert "data: 8 sources cut to 3 pieces (28 pieces dropped), 4 targets cut to 8 (4 dropped)\n" in out

