"""decode_ids, the search over many sources: empty sources, n-best limits, and the autocast
setting it follows (inside training too). The search itself is tested in test_search.py."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import DecodingConfig
from seq2seq.decoding import decode_ids
from test_search import LIMITED, ScriptedModel

CPU = torch.device("cpu")


class Recording(ScriptedModel):
    """The scripted model (every row follows LIMITED's script), recording the source lengths it
    is asked to encode; with the train/eval switch decode_ids expects of a model."""

    def __init__(self):
        super().__init__(LIMITED * 16)
        self.encoded, self.training = [], False

    def encode(self, src, lengths):
        self.encoded.append(lengths.tolist())
        return super().encode(src, lengths)

    def eval(self):
        return self.train(False)

    def train(self, mode: bool = True):
        self.training = mode
        return self


CFG = DecodingConfig(beam_size=2, length_penalty=0.0, max_length_ratio=1.0, max_length_offset=0)


@pytest.mark.parametrize("beam", [1, 2])
def test_empty_sources_get_an_empty_hypothesis_without_search(beam):
    """An empty source is not searched (collate would make it [EOS], a sentence the model never
    saw): its one hypothesis is empty with log-probability 0."""
    model = Recording()
    hyps = decode_ids(model, [[7, 7], [], [7, 7, 7], []], CFG, CPU, autocast_on=False,
                      beam_size=beam, nbest=beam, return_attention=True)
    assert model.encoded == [[2, 3]]  # one batch of the two real sources
    for i in (1, 3):
        assert len(hyps[i]) == 1
        assert hyps[i][0].tokens == [] and hyps[i][0].score == 0.0
        assert hyps[i][0].attention.shape == (1, 0)  # the EOS step over no source piece
    # the real sources are searched as they are alone (limit 2: 'w1 w1' is cut, see LIMITED)
    alone = decode_ids(Recording(), [[7, 7]], CFG, CPU, autocast_on=False, beam_size=beam, nbest=beam)
    assert [h.tokens for h in hyps[0]] == [h.tokens for h in alone[0]]
    assert hyps[0][0].score == pytest.approx(math.log(0.027 if beam == 1 else 0.24), rel=1e-6)


def test_only_empty_sources_never_touch_the_model():
    model = Recording()
    hyps = decode_ids(model, [[], []], CFG, CPU, autocast_on=False)
    assert model.encoded == [] and [[h.tokens for h in hs] for hs in hyps] == [[[]], [[]]]
    assert decode_ids(model, [], CFG, CPU, autocast_on=False) == []


@pytest.mark.parametrize("beam, nbest", [(2, 3), (1, 2), (2, 0)])
def test_nbest_must_fit_the_beam(beam, nbest):
    """A beam keeps beam_size hypotheses, greedy search one: asking for more is an error, not a
    shorter list."""
    from seq2seq.errors import UserError
    from seq2seq.search import beam_search
    with pytest.raises(UserError, match=f"nbest {nbest} .* beam size {beam}"):
        decode_ids(Recording(), [[7, 7]], CFG, CPU, autocast_on=False, beam_size=beam, nbest=nbest)
    with pytest.raises(ValueError, match="nbest"):
        beam_search(Recording(), torch.full((1, 2), 7), torch.tensor([2]), torch.tensor([2]),
                    beam_size=2, nbest=3)


# ---------------------------------------------------------------- autocast (training.autocast)


@pytest.fixture
def autocast_calls(monkeypatch):
    """Every autocast context decoding asks for, as the `enabled` flag it passes."""
    import seq2seq.decoding
    from seq2seq.device import autocast
    calls = []

    def spy(device, enabled=True):
        calls.append(enabled)
        return autocast(device, enabled)
    monkeypatch.setattr(seq2seq.decoding, "autocast", spy)
    return calls


@pytest.mark.parametrize("on", [False, True])
def test_decode_ids_follows_the_autocast_setting(autocast_calls, on):
    decode_ids(Recording(), [[7, 7], [7]], CFG, CPU, autocast_on=on)
    assert autocast_calls == [on]


def test_autocast_off_enters_no_autocast_region():
    """What decoding's flag turns into: no region at all when off, bf16 on CUDA when on."""
    import contextlib

    from seq2seq.device import autocast
    cuda = torch.device("cuda")
    assert isinstance(autocast(cuda, False), contextlib.nullcontext)
    assert isinstance(autocast(CPU, True), contextlib.nullcontext)  # fp32 on the CPU
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        region = autocast(cuda, True)
    assert isinstance(region, torch.autocast) and region.fast_dtype == torch.bfloat16


@pytest.mark.parametrize("on", [False, True])
def test_validation_and_translator_follow_training_autocast(autocast_calls, tmp_path,
                                                             tiny_recipe_dict, on):
    """training.autocast reaches the validation decoding inside training and the Translator
    of the model directory."""
    from seq2seq.config import recipe_from_dict
    from seq2seq.experiment import train
    from seq2seq.translator import Translator
    raw = {**tiny_recipe_dict, "training": {**tiny_recipe_dict["training"], "max_steps": 1,
                                            "autocast": on}}
    train(recipe_from_dict(raw), tmp_path / "m")
    assert autocast_calls and set(autocast_calls) == {on}  # validation at the end of training
    autocast_calls.clear()
    Translator.load(tmp_path / "m", "cpu").translate(["abc", "de"])
    assert autocast_calls == [on]
