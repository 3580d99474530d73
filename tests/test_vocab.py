"""Training sentencepiece models: what was asked is what is trained on, or the difference is said."""

from __future__ import annotations

import pytest

from seq2seq.config import VocabConfig
from seq2seq.recipe_io import load_recipe
from seq2seq.errors import UserError
from seq2seq.vocab import UNK, train_sentencepiece


def test_lines_longer_than_sentencepiece_default_are_trained_on(tmp_path):
    """sentencepiece skips lines over 4192 bytes unless told otherwise (long documents are
    common in summarisation): 'q' appears only in such a line and must be in the vocabulary."""
    text = tmp_path / "text.txt"
    text.write_text("abc def\n" * 20 + "ab " * 1400 + "q\n", encoding="utf-8")
    vocab = train_sentencepiece([text], tmp_path / "spm", VocabConfig(model_type="char", size=16))
    assert vocab.sp.piece_to_id("q") != UNK


def test_a_smaller_vocabulary_than_asked_is_said(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the city is big\na town is small\n" * 10, encoding="utf-8")
    vocab = train_sentencepiece([text], tmp_path / "spm", VocabConfig(model_type="word", size=100))
    assert len(vocab) == 4 + 7  # the special pieces and seven words: all the data holds
    out = capsys.readouterr().out
    assert out == (f"warning: vocab.size is 100, but the word model of {text} has 11 pieces "
                   "(sentencepiece found no more)\n")
    train_sentencepiece([text], tmp_path / "spm2", VocabConfig(model_type="word", size=11))
    assert capsys.readouterr().out == ""


def test_case_folding_is_kept_in_the_model(tmp_path):
    """vocab.normalization nmt_nfkc_cf folds case when training and, kept in the model, when
    encoding: 'The' and 'the' are one piece; the default keeps them apart."""
    text = tmp_path / "text.txt"
    text.write_text("The city is big\nthe town is small\nTHE END\n" * 10, encoding="utf-8")
    folded = train_sentencepiece([text], tmp_path / "cf", VocabConfig(model_type="word", size=30,
                                                                       normalization="nmt_nfkc_cf"))
    assert len(folded) == 4 + 7  # the, city, is, big, town, small, end: no 'The', 'THE' or 'END'
    assert folded.encode(["THE City"]) == folded.encode(["the city"])
    assert folded.decode(folded.encode(["The City"])) == ["the city"]
    kept = train_sentencepiece([text], tmp_path / "kept", VocabConfig(model_type="word", size=30))
    assert len(kept) == 4 + 9 and kept.encode(["The"]) != kept.encode(["the"])


def test_symbols_are_one_piece_after_a_space_or_not(tmp_path):
    """vocab.symbols: '#Person1#' is one piece ('▁#Person1#' after a space, '#Person1#' after '('),
    where sentencepiece alone splits it into '▁#', 'Person', '1#' (three pieces, so that a
    summary's trigram blocking forbade naming a speaker twice); text comes back unchanged."""
    text = tmp_path / "text.txt"
    text.write_text("#Person1# asks #Person2# about the trip. (#Person2#) says it was long.\n" * 30
                    + "the person asked about the city and the town.\n" * 30, encoding="utf-8")
    line = "#Person1# asks #Person2# about (#Person1#) the trip."
    plain = train_sentencepiece([text], tmp_path / "plain", VocabConfig(size=40))
    assert "▁#Person1#" not in plain.pieces(plain.encode([line])[0])
    vocab = train_sentencepiece([text], tmp_path / "sym",
                                VocabConfig(size=40, symbols=("#Person1#", "#Person2#")))
    pieces = vocab.pieces(vocab.encode([line])[0])
    assert pieces[0] == "▁#Person1#"
    assert pieces.count("▁#Person1#") == 1 and pieces.count("▁#Person2#") == 1
    assert pieces.count("#Person1#") == 1  # after '(': no space before it
    assert vocab.decode(vocab.encode([line])) == [line]


def test_a_symbol_with_a_space_is_a_recipe_error(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("a b c\n" * 10, encoding="utf-8")
    for bad in ("two words", "", "▁x"):
        with pytest.raises(UserError, match=r"^vocab.symbols: "):
            train_sentencepiece([text], tmp_path / "spm", VocabConfig(model_type="char", size=8,
                                                                      symbols=(bad,)))


def test_symbols_in_a_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("vocab: {symbols: ['#Person1#', '#Person2#']}\n", encoding="utf-8")
    assert load_recipe(recipe).vocab.symbols == ("#Person1#", "#Person2#")
