"""Training sentencepiece models: what was asked is what is trained on, or the difference is said."""

from __future__ import annotations

from seq2seq.config import VocabConfig
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
