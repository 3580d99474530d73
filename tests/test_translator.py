"""The Python entry point without a model directory: a Translator over a small random model and the
character vocabulary. translate_full (hypotheses, scores, pieces, attention), n-best lists,
copied pieces in every hypothesis, and the edge cases: no lines, blank lines, nbest > beam."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks.summarization.summarizer import Summarizer
from seq2seq.tasks.translation.translator import Candidate, Translation, Translator
from seq2seq.vocab import EOS

CPU = torch.device("cpu")
RECIPE = recipe_from_dict({"decoding": {"beam_size": 3, "max_length_ratio": 1.5,
                                       "max_length_offset": 3}})
LINES = ["abc", "", "hgfe dab", "  ", "c"]


@pytest.fixture
def translator(make_model, char_vocab) -> Translator:
    torch.manual_seed(0)
    model = make_model(vocab_size=len(char_vocab), deterministic=False, decoder={"cell": "lstm"})
    with torch.no_grad():  # a peakier output layer, and no pad/unk/bos: a mix of lengths
        model.generator.weight.mul_(6.0)
        model.generator.bias[:EOS] -= 10.0
    return Translator(model, char_vocab, char_vocab, RECIPE, CPU)


def test_no_lines_give_an_empty_list(translator, make_model, char_vocab):
    assert translator.translate([]) == []
    assert translator.translate([], nbest=2) == []
    assert translator.translate_full([]) == []
    assert translator.to_text([], None) == []
    summarizer = Summarizer(make_model(vocab_size=len(char_vocab)), char_vocab, char_vocab, RECIPE, CPU)
    assert summarizer.summarize([]) == []


def test_translate_full_holds_what_the_search_found(translator, char_vocab):
    full = translator.translate_full(LINES, beam_size=3, nbest=3, attention=True)
    assert all(isinstance(r, Translation) for r in full) and [r.source for r in full] == LINES
    hyps = translator.search(LINES, beam_size=3, nbest=3, return_attention=True)
    for line, result, line_hyps in zip(LINES, full, hyps):
        if not line.strip():  # a blank line: one empty output, nothing searched
            assert result.source_pieces == []
            [c] = result.hypotheses
            assert (c.text, c.score, c.pieces, c.attention.shape) == ("", 0.0, ["</s>"], (1, 0))
            continue
        assert result.source_pieces == char_vocab.sp.encode(line, out_type=str)
        assert len(result.hypotheses) == 3
        scores = [c.score for c in result.hypotheses]
        assert scores == sorted(scores, reverse=True) == [h.score for h in line_hyps]
        for c, h in zip(result.hypotheses, line_hyps):
            assert isinstance(c, Candidate)
            assert c.text == char_vocab.decode([h.tokens])[0]
            assert c.pieces == char_vocab.pieces(h.tokens) + ["</s>"]
            assert c.attention.shape == (len(c.pieces), len(result.source_pieces))
            assert torch.equal(c.attention, h.attention)
    assert len({c.text for r in full for c in r.hypotheses}) > 3  # not all alike
    assert all(c.attention is None for r in translator.translate_full(LINES) for c in r.hypotheses)


def test_translate_returns_lists_of_n_best_texts(translator):
    full = translator.translate_full(LINES, beam_size=3, nbest=2)
    texts = [[c.text for c in r.hypotheses] for r in full]
    assert translator.translate(LINES, beam_size=3, nbest=2) == texts
    assert translator.translate(LINES, beam_size=3) == [r.hypotheses[0].text for r in full]
    assert translator.translate(LINES) == translator.translate(LINES, beam_size=3, nbest=1)


@pytest.mark.parametrize("beam, nbest", [(3, 4), (1, 2), (3, 0)])
def test_nbest_beyond_the_beam_is_an_error(translator, beam, nbest):
    with pytest.raises(UserError, match=f"nbest {nbest}") as info:
        translator.translate(["abc"], beam_size=beam, nbest=nbest)
    assert "\n" not in str(info.value)


def test_copied_pieces_are_source_text_in_every_hypothesis(make_model, char_vocab, monkeypatch):
    """A copy model's n-best entries hold extended ids (scripted here: what the search returns is
    search's business): each entry writes them as the source text they stand for."""
    import seq2seq.tasks.translation.translator
    from seq2seq.search import Hypothesis
    translator = Translator(make_model(vocab_size=len(char_vocab), copy=True), char_vocab, char_vocab,
                            RECIPE, CPU)
    line, V = "aXbY", len(char_vocab)
    assert translator.encode([line])[1] == [["X", "Y"]]  # ids V and V + 1
    a, b = char_vocab.sp.piece_to_id("a"), char_vocab.sp.piece_to_id("b")
    scripted = [[Hypothesis([V], -1.0), Hypothesis([a, V + 1], -2.0), Hypothesis([V + 1, b, V], -3.0)]]
    monkeypatch.setattr(seq2seq.tasks.translation.translator, "decode_ids", lambda *args, **kw: scripted)
    [result] = translator.translate_full([line], beam_size=3, nbest=3)
    assert [c.text for c in result.hypotheses] == ["X", "aY", "YbX"]
    assert [c.pieces for c in result.hypotheses] == [["X", "</s>"], ["a", "Y", "</s>"],
                                                     ["Y", "b", "X", "</s>"]]
    assert [c.score for c in result.hypotheses] == [-1.0, -2.0, -3.0]
    assert translator.translate([line], beam_size=3, nbest=3) == [["X", "aY", "YbX"]]
