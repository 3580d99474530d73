"""tools/plot_attention.py names its axes with Translator.translate_full's pieces, so a copy
model's extended (copied) ids come out as the source text they copy instead of failing in
sentencepiece (the tool used to look them up in the target vocabulary)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import plot_attention  # noqa: E402

from seq2seq.config import recipe_from_dict  # noqa: E402
from seq2seq.search import Hypothesis  # noqa: E402
from seq2seq.tasks.translation.translator import Translator  # noqa: E402


def test_plot_attention_draws_copied_pieces(make_model, char_vocab, monkeypatch, tmp_path, capsys):
    import seq2seq.tasks.translation.plot
    import seq2seq.tasks.translation.translator
    recipe = recipe_from_dict({"decoding": {"beam_size": 2}})
    translator = Translator(make_model(vocab_size=len(char_vocab), copy=True), char_vocab, char_vocab,
                            recipe, torch.device("cpu"))
    line, V = "aXbY", len(char_vocab)
    a = char_vocab.sp.piece_to_id("a")
    source_pieces = char_vocab.sp.encode(line, out_type=str)
    attention = torch.softmax(torch.arange(4 * len(source_pieces), dtype=torch.float).view(4, -1), -1)
    scripted = [[Hypothesis([V + 1, a, V], -1.0, attention)]]  # 'Y' 'a' 'X' </s>, copies by id
    monkeypatch.setattr(seq2seq.tasks.translation.translator, "decode_ids", lambda *args, **kw: scripted)
    monkeypatch.setattr(Translator, "load", classmethod(lambda cls, *args, **kw: translator))
    drawn = {}
    real = seq2seq.tasks.translation.plot.plot_attention

    def spy(weights, src_tokens, tgt_tokens, path, title=""):
        drawn.update(weights=weights, src=src_tokens, tgt=tgt_tokens, title=title)
        real(weights, src_tokens, tgt_tokens, path, title)

    monkeypatch.setattr(seq2seq.tasks.translation.plot, "plot_attention", spy)
    png = tmp_path / "attention.png"
    assert plot_attention.main(["model", line, str(png), "--beam-size", "2"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["src"] == source_pieces
    assert drawn["tgt"] == ["Y", "a", "X", "</s>"]
    assert torch.equal(drawn["weights"], attention)
    assert drawn["title"] == "aXbY -> YaX"
    assert capsys.readouterr().out.startswith("aXbY -> YaX; attention written to")
