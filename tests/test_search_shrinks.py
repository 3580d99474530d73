"""Done sentences leave the search (seq2seq/search.py, SHRINK_AT): the rows the model runs on
shrink as sentences end, and every result is the one of a search that keeps all its rows
(SHRINK_AT above 1: nothing ever leaves, the search as it was before it shrank)."""

from __future__ import annotations

import math

import pytest
import torch

import seq2seq.search
from seq2seq.batch import collate
from seq2seq.search import beam_search, greedy_search, max_lengths
from seq2seq.vocab import EOS
from test_search import W1, W2, ScriptedModel

NEVER, ALWAYS = 2.0, 0.0  # SHRINK_AT: no shrinking; a shrink at every sentence that is done


class Ladder:
    """A script (ScriptedModel's) for a sentence that wants n tokens: a prefix of j < n tokens goes
    on (w1 0.5, w2 0.45 - 0.01 j, EOS 0.05), one of n ends (EOS 0.95). A beam of 2 keeps w1 w1 ...
    and w2 w1 ..., and both end at step n."""

    def __init__(self, n: int):
        self.n = n

    def get(self, prefix: tuple, default: dict) -> dict:
        j = len(prefix)
        return {W1: 0.5, W2: 0.45 - 0.01 * j, EOS: 0.05} if j < self.n else {EOS: 0.95, W1: 0.05}


class RowCounting:
    """A model for search that passes each call on, recording the rows of every step."""

    def __init__(self, model):
        self.model, self.rows = model, []

    def encode(self, src, lengths):
        return self.model.encode(src, lengths)

    def step(self, prev, memory, state):
        self.rows.append(prev.size(0))
        return self.model.step(prev, memory, state)


WANTS = [1, 4, 2, 6]  # tokens each sentence of the ladder batch wants
SRC, LENGTHS, LIMIT = torch.full((4, 6), 7), torch.tensor([6, 6, 6, 6]), torch.tensor([10, 10, 10, 10])


@pytest.mark.parametrize("shrink, rows", [(seq2seq.search.SHRINK_AT, [4, 4, 3, 2, 2, 1, 1]),
                                          (ALWAYS, [4, 4, 3, 2, 2, 1, 1]),
                                          (NEVER, [4] * 7)])
def test_rows_shrink_as_sentences_end(monkeypatch, shrink, rows):
    """Sentence n ends at step n: from the next step on the model no longer sees its row (greedy)
    or its K rows (beam), and the results do not change."""
    monkeypatch.setattr(seq2seq.search, "SHRINK_AT", shrink)
    greedy = RowCounting(ScriptedModel([Ladder(n) for n in WANTS]))
    hyps = greedy_search(greedy, SRC, LENGTHS, LIMIT, return_attention=True)
    assert greedy.rows == rows
    assert [h[0].tokens for h in hyps] == [[W1] * n for n in WANTS]
    assert [h[0].score for h in hyps] == pytest.approx([math.log(0.5 ** n * 0.95) for n in WANTS], rel=1e-6)
    assert [h[0].attention.shape[0] for h in hyps] == [n + 1 for n in WANTS]

    beam = RowCounting(ScriptedModel([Ladder(n) for n in WANTS]))
    hyps = beam_search(beam, SRC, LENGTHS, LIMIT, beam_size=2, alpha=0.0, nbest=2, return_attention=True)
    assert beam.rows == [2 * r for r in rows]
    assert [[h.tokens for h in hs] for hs in hyps] == [[[W1] * n, [W2] + [W1] * (n - 1)] for n in WANTS]
    for n, hs in zip(WANTS, hyps):
        assert [h.score for h in hs] == pytest.approx(
            [math.log(0.5 ** n * 0.95), math.log(0.5 ** (n - 1) * 0.45 * 0.95)], rel=1e-6)
        assert [h.attention.shape[0] for h in hs] == [n + 1, n + 1]


def test_a_sentence_with_no_live_hypothesis_leaves():
    """A sentence cut at length 0 ends one hypothesis (EOS forced at step 0) and has none alive:
    it leaves after step 0 although fewer than K of its hypotheses ended."""
    model = RowCounting(ScriptedModel([Ladder(n) for n in WANTS]))
    hyps = beam_search(model, SRC, LENGTHS, torch.tensor([10, 0, 10, 10]), beam_size=2, alpha=0.0, nbest=2)
    assert model.rows == [8, 6, 4, 2, 2, 2, 2]
    assert [h.tokens for h in hyps[1]] == [[]] and hyps[1][0].score == pytest.approx(math.log(0.05))


# ---------------------------------------------------------------- small real models

SOURCES = [[4], [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 4, 5, 6, 7, 8, 9, 10, 11], [13, 5], [5, 5, 5, 5],
           [14], [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 4], [11, 13], [9, 4, 6]]
COPY_SOURCES = [[s if i % 3 else 18 + s % 4 for i, s in enumerate(src)] for src in SOURCES]  # some >= V


def peaky(model):
    with torch.no_grad():  # a peakier output layer, and no pad/unk/bos: a mix of lengths
        model.generator.weight.mul_(6.0)
        model.generator.bias[:EOS] -= 10.0
    return model


SEARCHES = {  # a search's options -> (model section, sources)
    "lstm": ({"decoder": {"cell": "lstm"}}, SOURCES),
    "copy, coverage": ({"copy": True, "attention": {"coverage": True}}, COPY_SOURCES),
    "no input feeding": ({"decoder": {"input_feeding": False}}, SOURCES),
}
OPTIONS = [dict(return_attention=True), dict(min_length=2, no_repeat_ngram_size=2)]


@pytest.mark.parametrize("section", SEARCHES)
@pytest.mark.parametrize("beam", [1, 5])
def test_shrinking_leaves_results_as_they_were(make_model, monkeypatch, section, beam):
    """Sentences of very different lengths on small random models: the same tokens, and the same
    scores and attention up to float rounding (the model's matmuls see fewer rows), as a search
    that keeps every row; and the rows do shrink."""
    torch.manual_seed(0)
    model_section, sources = SEARCHES[section]
    model = peaky(make_model(vocab_size=18, deterministic=False, **model_section))
    batch = collate(sources)
    limit = max_lengths(batch.src_lengths, 1.5, 3)
    for options in OPTIONS:
        if beam > 1:
            options = {**options, "beam_size": beam, "nbest": beam, "alpha": 1.0,
                       "coverage_penalty_beta": 0.2 if "coverage" in section else 0.0}
        search = beam_search if beam > 1 else greedy_search
        runs = {}
        for shrink in (NEVER, seq2seq.search.SHRINK_AT, ALWAYS):
            monkeypatch.setattr(seq2seq.search, "SHRINK_AT", shrink)
            counting = RowCounting(model)
            runs[shrink] = search(counting, batch.src, batch.src_lengths, limit, **options), counting.rows
        (kept, kept_rows), (shrunk, shrunk_rows) = runs[NEVER], runs[ALWAYS]
        assert set(kept_rows) == {len(sources) * beam}
        assert shrunk_rows[-1] < shrunk_rows[0] and shrunk_rows == sorted(shrunk_rows, reverse=True)
        assert len(shrunk_rows) == len(kept_rows)  # the longest sentence still takes every step
        assert len({len(h.tokens) for hs in kept for h in hs}) > 2  # hypotheses end at different steps
        for hyps, _ in runs.values():
            assert [[h.tokens for h in hs] for hs in hyps] == [[h.tokens for h in hs] for hs in kept]
            for hs, ks in zip(hyps, kept):
                assert [h.score for h in hs] == pytest.approx([h.score for h in ks], rel=1e-6, abs=1e-5)
                for h, k in zip(hs, ks):
                    assert (h.attention is None) == (k.attention is None)
                    if h.attention is not None:
                        torch.testing.assert_close(h.attention, k.attention)
