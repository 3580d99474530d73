"""decode_ids, the search over many sources: empty sources and n-best limits. The search itself is
tested in test_search.py, the precision decoding runs in (inside training too) in test_precision.py."""

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
    hyps = decode_ids(model, [[7, 7], [], [7, 7, 7], []], CFG, CPU, precision="fp32",
                      beam_size=beam, nbest=beam, return_attention=True)
    assert model.encoded == [[2, 3]]  # one batch of the two real sources
    for i in (1, 3):
        assert len(hyps[i]) == 1
        assert hyps[i][0].tokens == [] and hyps[i][0].score == 0.0
        assert hyps[i][0].attention.shape == (1, 0)  # the EOS step over no source piece
    # the real sources are searched as they are alone (limit 2: 'w1 w1' is cut, see LIMITED)
    alone = decode_ids(Recording(), [[7, 7]], CFG, CPU, precision="fp32", beam_size=beam, nbest=beam)
    assert [h.tokens for h in hyps[0]] == [h.tokens for h in alone[0]]
    assert hyps[0][0].score == pytest.approx(math.log(0.027 if beam == 1 else 0.24), rel=1e-6)


def test_only_empty_sources_never_touch_the_model():
    model = Recording()
    hyps = decode_ids(model, [[], []], CFG, CPU, precision="fp32")
    assert model.encoded == [] and [[h.tokens for h in hs] for hs in hyps] == [[[]], [[]]]
    assert decode_ids(model, [], CFG, CPU, precision="fp32") == []


@pytest.mark.parametrize("beam, nbest", [(2, 3), (1, 2), (2, 0)])
def test_nbest_must_fit_the_beam(beam, nbest):
    """A beam keeps beam_size hypotheses, greedy search one: asking for more is an error, not a
    shorter list."""
    from seq2seq.errors import UserError
    from seq2seq.search import beam_search
    with pytest.raises(UserError, match=f"nbest {nbest} .* beam size {beam}"):
        decode_ids(Recording(), [[7, 7]], CFG, CPU, precision="fp32", beam_size=beam, nbest=nbest)
    with pytest.raises(ValueError, match="nbest"):
        beam_search(Recording(), torch.full((1, 2), 7), torch.tensor([2]), torch.tensor([2]),
                    beam_size=2, nbest=3)



# ---------------------------------------------------------------- batches


def test_length_batches_by_hand():
    """Shortest first (ties in input order), at most `size` sentences, and at most size x the
    median length in source positions, padding included: the long tail goes in smaller batches."""
    from seq2seq.decoding import length_batches
    lengths = [3, 0, 1, 30, 2, 3, 2, 4, 12]  # median of the non-empty: 3; size 3: 9 positions
    assert length_batches(lengths, 3) == [[2, 4, 6], [0, 5], [7], [8], [3]]
    assert length_batches(lengths, 100) == [[2, 4, 6, 0, 5, 7, 8, 3]]  # 8 x 30 within 100 x 3
    assert length_batches([0, 0], 4) == []


def test_decode_ids_batches_by_length_and_answers_in_input_order():
    model = Recording()
    sources = [[7] * 9, [7, 7], [7, 7, 7], [7, 7], [7, 7], [7, 7]]
    hyps = decode_ids(model, sources, CFG, CPU, precision="fp32", batch_size=4)
    assert model.encoded == [[2, 2, 2, 2], [3], [9]]  # median 2: 8 positions a batch at most
    alone = [decode_ids(Recording(), [s], CFG, CPU, precision="fp32")[0] for s in sources]
    assert [[h.tokens for h in hs] for hs in hyps] == [[h.tokens for h in hs] for hs in alone]
    assert hyps[0][0].tokens != hyps[1][0].tokens  # the long source answers differently: order shows


@pytest.mark.parametrize("beam, batch_size, want", [(1, 0, 320), (2, 0, 64), (1, 5, 5), (2, 5, 5)])
def test_the_default_batch_is_320_sentences_greedy_and_64_beam(beam, batch_size, want, monkeypatch):
    """decoding.batch_size 0 (the default): 320 sentences a batch for greedy search, 64 for beam
    search and the other tasks; a size set is kept for all."""
    import seq2seq.decoding as decoding

    assert DecodingConfig().batch_size == 0
    asked = []
    monkeypatch.setattr(decoding, "length_batches", lambda lengths, size: asked.append(size) or [])
    cfg = DecodingConfig(beam_size=2, batch_size=batch_size)
    decode_ids(Recording(), [[7, 7]] * 3, cfg, CPU, precision="fp32", beam_size=beam)
    assert asked == [want]
    assert cfg.sentences_per_batch() == (batch_size or 64)
