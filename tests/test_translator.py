"""The Python entry point without a model directory: a Translator over a small random model and the
character vocabulary."""

from __future__ import annotations

import pytest
import torch

from seq2seq.config import recipe_from_dict
from seq2seq.summarizer import Summarizer
from seq2seq.translator import Translator
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
    assert translator.to_text([], None) == []
    summarizer = Summarizer(make_model(vocab_size=len(char_vocab)), char_vocab, char_vocab, RECIPE, CPU)
    assert summarizer.summarize([]) == []
