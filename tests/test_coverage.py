"""Coverage (See et al. 2017): the loss by hand, the decoder's running coverage; and the search
options summaries use: n-gram repeat blocking, minimum and maximum length, coverage penalty."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import DecodingConfig, recipe_from_dict
from seq2seq.batch import collate
from seq2seq.decoding import decode_ids
from seq2seq.errors import UserError
from seq2seq.loss import coverage_loss
from seq2seq.search import beam_search, block_repeats, coverage_penalty, greedy_search
from seq2seq.vocab import BOS, EOS
from test_search import SCRIPTS, W1, W2, ScriptedModel

# ---------------------------------------------------------------- coverage loss


def test_coverage_loss_is_zero_when_attention_never_revisits():
    diagonal = torch.eye(4).unsqueeze(0)  # (1, T=4, S=4): each step a new position
    assert coverage_loss(diagonal, torch.full((1, 4), 5)).item() == 0.0
    spread = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.3, 0.7]]])
    assert coverage_loss(spread, torch.full((1, 2), 5)).item() == 0.0


def test_coverage_loss_counts_what_is_attended_again():
    again = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    assert coverage_loss(again, torch.full((1, 3), 5)).item() == pytest.approx(1.0)
    soft = torch.tensor([[[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]]])
    # step 1: min(.3,.6) + min(.7,.4) = .7; step 2: min(.5,.9) + min(.5,1.1) = 1.0
    assert coverage_loss(soft, torch.full((1, 3), 5)).item() == pytest.approx(1.7)
    # padded target steps do not count
    assert coverage_loss(soft, torch.tensor([[5, 5, 0]])).item() == pytest.approx(0.7)


# ---------------------------------------------------------------- the decoder's coverage


def test_decoder_carries_the_sum_of_past_attention(make_model):
    model = make_model(attention={"coverage": True})
    assert model.decoder.coverage and model.decoder.attention.coverage_layer is not None
    batch = collate([[4, 5, 6, 7], [8, 9]])
    memory, state = model.encode(batch.src, batch.src_lengths)
    total = torch.zeros(2, 4)
    for token in (BOS, 5, 6):
        _, weights, state = model.step(torch.full((2,), token), memory, state)
        total += weights
        torch.testing.assert_close(state.coverage, total)
    # coverage reaches the scores: another coverage gives other attention
    _, a, _ = model.step(torch.full((2,), 7), memory, state)
    state.coverage = state.coverage * 0.0
    _, b, _ = model.step(torch.full((2,), 7), memory, state)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("section, needle", [
    ({"model": {"attention": {"type": "dot", "coverage": True}}}, "model.attention.coverage"),
    ({"training": {"coverage_weight": 1.0}}, "training.coverage_weight"),
    ({"model": {"copy": True}, "vocab": {"joint": False}}, "model.copy"),
])
def test_recipe_rejects_combinations_that_cannot_work(section, needle):
    with pytest.raises(UserError, match=needle):
        recipe_from_dict(section)


# ---------------------------------------------------------------- search options


def test_block_repeats_by_hand():
    log_probs = torch.zeros(1, 8)
    history = torch.tensor([[4, 5, 4]])
    assert torch.isinf(block_repeats(log_probs, history, 2)).nonzero()[:, 1].tolist() == [5]
    assert torch.isinf(block_repeats(log_probs, history, 1)).nonzero()[:, 1].tolist() == [4, 5]
    assert not torch.isinf(block_repeats(log_probs, history, 3)).any()
    assert not torch.isinf(block_repeats(log_probs, history, 4)).any()  # too short to repeat


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


@pytest.fixture
def repetitive_model(make_model):
    """A random model pushed to say token 6 (and a few others) over and over."""
    torch.manual_seed(0)
    model = make_model(vocab_size=10, deterministic=False)
    with torch.no_grad():
        model.generator.bias[:EOS + 1] -= 8.0
        model.generator.bias[6] += 4.0
    return model


SOURCES = [[4, 5, 6, 7, 8], [9, 4], [5, 5, 6, 7], [8, 9, 4, 5, 6, 7, 8]]


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_never_emits_a_repeated_ngram(repetitive_model, beam, n):
    cfg = DecodingConfig(beam_size=beam, nbest=beam, max_length_ratio=2.0, max_length_offset=4)
    free = decode_ids(repetitive_model, SOURCES, cfg, torch.device("cpu"), precision="fp32", nbest=beam)
    assert any(len(set(ngrams(h.tokens, n))) < len(ngrams(h.tokens, n)) for hs in free for h in hs)
    blocked_cfg = DecodingConfig(beam_size=beam, nbest=beam, max_length_ratio=2.0, max_length_offset=4,
                                 no_repeat_ngram_size=n)
    blocked = decode_ids(repetitive_model, SOURCES, blocked_cfg, torch.device("cpu"), precision="fp32",
                         nbest=beam)
    for hs in blocked:
        for h in hs:
            grams = ngrams(h.tokens, n)
            assert len(set(grams)) == len(grams), h.tokens
    assert max(len(h.tokens) for hs in blocked for h in hs) >= 3


@pytest.mark.parametrize("beam", [1, 3])
def test_min_and_max_length(repetitive_model, beam):
    with torch.no_grad():  # make EOS likely at once
        repetitive_model.generator.bias[EOS] += 30.0
    cpu = torch.device("cpu")
    short = decode_ids(repetitive_model, SOURCES, DecodingConfig(beam_size=beam), cpu, precision="fp32")
    assert all(len(h[0].tokens) == 0 for h in short)
    longer = decode_ids(repetitive_model, SOURCES, DecodingConfig(beam_size=beam, min_length=3), cpu,
                        precision="fp32")
    assert all(len(h[0].tokens) == 3 for h in longer)  # EOS as soon as it is allowed
    with torch.no_grad():
        repetitive_model.generator.bias[EOS] -= 60.0  # now EOS never wins: the cap decides
    capped = decode_ids(repetitive_model, SOURCES, DecodingConfig(beam_size=beam, max_length=4), cpu,
                        precision="fp32")
    assert all(len(h[0].tokens) == 4 for h in capped)


def test_coverage_penalty_by_hand():
    cov = torch.tensor([[[0.5, 1.5, 0.0], [1.0, 0.0, 7.0]]])  # (B=1, K=2, S=3)
    penalty = coverage_penalty(cov, torch.tensor([2]), 0.2)  # the third position is padding
    assert penalty[0].tolist() == pytest.approx([0.2 * math.log(0.5), 0.2 * math.log(1e-6)], rel=1e-5)


def test_coverage_penalty_prefers_hypotheses_that_cover_the_source():
    """The scripted model attends one-hot to (last token fed) mod 6: 'w1' covers 2 of the 6
    source positions, 'w2 w1' covers 3; a penalty of 0.01 per log-uncovered position flips the
    order that plain log-probabilities give."""
    def run(beta):
        return beam_search(ScriptedModel(SCRIPTS), torch.full((2, 6), 7), torch.tensor([6, 3]),
                           torch.tensor([10, 2]), beam_size=2, alpha=0.0, nbest=2,
                           coverage_penalty_beta=beta)
    assert [h.tokens for h in run(0.0)[0]] == [[W1], [W2, W1]]
    hyps = run(0.01)[0]
    assert [h.tokens for h in hyps] == [[W2, W1], [W1]]
    uncovered = 0.01 * math.log(1e-6)
    assert [h.score for h in hyps] == pytest.approx([math.log(0.288) + 3 * uncovered,
                                                     math.log(0.30) + 4 * uncovered], rel=1e-5)
    assert {BOS % 6, W1 % 6} == {2, 4}  # the positions 'w1' covers (documenting the count above)
