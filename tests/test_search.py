"""Search with a scripted model whose step probabilities are written by hand (fairseq's
sequence_generator tests), then greedy/beam agreement and batch invariance on small real models."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import DecodingConfig
from seq2seq.decoding import decode_ids
from seq2seq.search import beam_search, greedy_search, length_penalty, max_lengths
from seq2seq.vocab import BOS, EOS

V, W1, W2 = 6, 4, 5  # pad 0, unk 1, bos 2, eos 3, two words

# Per sentence: tokens generated so far -> next-token probabilities. Unlisted: EOS for sure.
SCRIPTS = [
    {  # sentence 0: 'w1' is the most probable sentence; 'w2 w1' wins once longer ones are favoured
        (): {W1: 0.5, W2: 0.4, EOS: 0.1},
        (W1,): {EOS: 0.6, W2: 0.3, W1: 0.1},  # w1 EOS: 0.30
        (W2,): {W1: 0.8, EOS: 0.15, W2: 0.05},  # w2 w1: 0.32, w2 EOS: 0.06
        (W2, W1): {EOS: 0.9, W1: 0.06, W2: 0.04},  # w2 w1 EOS: 0.288
        (W1, W2): {EOS: 0.5, W1: 0.3, W2: 0.2},  # w1 w2 EOS: 0.075
    },
    {  # sentence 1: would go on for ever; its maximum length (2) forces EOS at step 2
        (): {W1: 0.9, W2: 0.07, EOS: 0.03},
        (W1,): {W1: 0.9, W2: 0.07, EOS: 0.03},
        (W2,): {W1: 0.6, W2: 0.3, EOS: 0.1},
        (W1, W1): {W1: 0.9, W2: 0.06, EOS: 0.04},
        (W1, W2): {W1: 0.5, W2: 0.4, EOS: 0.1},
    },
]


class Rows:
    """A memory or state: one tensor whose rows follow `select`."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows

    def select(self, index: torch.Tensor) -> "Rows":
        return Rows(self.rows.index_select(0, index))


class ScriptedModel:
    """memory: sentence ids; state: the tokens fed so far (BOS first), so a wrong beam reorder
    of the state shows up as the wrong script row."""

    def __init__(self, scripts, src_len: int = 6):
        self.scripts, self.src_len, self.steps = scripts, src_len, 0

    def encode(self, src, lengths):
        return Rows(torch.arange(src.size(0))), Rows(torch.empty(src.size(0), 0, dtype=torch.long))

    def step(self, prev, memory, state):
        self.steps += 1
        history = torch.cat([state.rows, prev.unsqueeze(1)], 1)  # (N, t+1)
        log_probs = torch.full((prev.size(0), V), float("-inf"))
        for row, (sentence, fed) in enumerate(zip(memory.rows.tolist(), history.tolist())):
            assert fed[0] == BOS
            for token, p in self.scripts[sentence].get(tuple(fed[1:]), {EOS: 1.0}).items():
                log_probs[row, token] = math.log(p)
        # attention: one-hot on (last token fed) mod S, so each hypothesis has its own pattern
        weights = torch.nn.functional.one_hot(prev % self.src_len, self.src_len).float()
        return log_probs, weights, Rows(history)


def run_beam(alpha, nbest=2, beam=2, max_len=(10, 2), **kw):
    src = torch.full((2, 6), 7)
    lengths = torch.tensor([6, 3])
    return beam_search(ScriptedModel(SCRIPTS), src, lengths, torch.tensor(max_len), beam_size=beam,
                       alpha=alpha, nbest=nbest, **kw)


def lp(n, alpha):
    return ((5 + n) / 6) ** alpha


def test_length_penalty_and_max_lengths():
    assert float(length_penalty(torch.tensor(3), 1.0)) == pytest.approx(8 / 6)
    assert float(length_penalty(torch.tensor(3), 0.0)) == 1.0
    assert float(length_penalty(torch.tensor(1), 2.0)) == pytest.approx(1.0)
    assert max_lengths(torch.tensor([3, 10, 0]), 1.5, 2).tolist() == [6, 17, 2]  # 4.5 -> 4


def test_beam_without_length_penalty():
    hyps = run_beam(alpha=0.0)
    assert [h.tokens for h in hyps[0]] == [[W1], [W2, W1]]
    assert [h.score for h in hyps[0]] == pytest.approx([math.log(0.30), math.log(0.288)], rel=1e-6)
    # sentence 1 is cut at its maximum length; the forced EOS costs nothing
    assert [h.tokens for h in hyps[1]] == [[W1, W1], [W1, W2]]
    assert [h.score for h in hyps[1]] == pytest.approx([math.log(0.81), math.log(0.063)], rel=1e-6)


def test_beam_with_length_penalty_prefers_longer():
    hyps = run_beam(alpha=1.0)
    assert [h.tokens for h in hyps[0]] == [[W2, W1], [W1]]
    assert [h.score for h in hyps[0]] == pytest.approx(
        [math.log(0.288) / lp(3, 1.0), math.log(0.30) / lp(2, 1.0)], rel=1e-6)
    assert [h.tokens for h in hyps[1]] == [[W1, W1], [W1, W2]]
    assert [h.score for h in hyps[1]] == pytest.approx(
        [math.log(0.81) / lp(3, 1.0), math.log(0.063) / lp(3, 1.0)], rel=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_nbest_is_sorted_and_truncated(alpha):
    two = run_beam(alpha, nbest=2)
    one = run_beam(alpha, nbest=1)
    for a, b in zip(two, one):
        assert len(a) == 2 and len(b) == 1
        assert a[0].score >= a[1].score
        assert b[0].tokens == a[0].tokens and b[0].score == a[0].score


def test_beam_stops_when_every_sentence_is_done():
    model = ScriptedModel(SCRIPTS)
    beam_search(model, torch.full((2, 6), 7), torch.tensor([6, 3]), torch.tensor([10, 2]), beam_size=2,
                alpha=0.0, nbest=2)
    assert model.steps == 3  # both sentences have 2 finished hypotheses after step 2


def test_max_length_forces_eos():
    # with a looser limit sentence 1 goes on (w1 w1 w1, then its script ends in EOS)
    free = run_beam(alpha=0.0, max_len=(10, 4))
    assert free[1][0].tokens == [W1, W1, W1]
    assert free[1][0].score == pytest.approx(math.log(0.9 ** 3), rel=1e-6)
    assert free[0] == run_beam(alpha=0.0)[0]  # the other sentence does not notice
    cut = run_beam(alpha=0.0, nbest=1, max_len=(10, 0))
    assert cut[1][0].tokens == [] and cut[1][0].score == 0.0


def test_beam_attention_follows_each_hypothesis():
    hyps = run_beam(alpha=0.0, return_attention=True)
    w1, w2w1 = hyps[0]
    assert w1.attention.shape == (2, 6)  # the EOS step included
    assert w1.attention.argmax(-1).tolist() == [BOS % 6, W1 % 6]
    assert w2w1.attention.argmax(-1).tolist() == [BOS % 6, W2 % 6, W1 % 6]
    assert hyps[1][0].attention.shape == (3, 3)  # trimmed to the source length


def test_greedy_on_scripted_model():
    model = ScriptedModel(SCRIPTS)
    hyps = greedy_search(model, torch.full((2, 6), 7), torch.tensor([6, 3]), torch.tensor([10, 2]),
                         return_attention=True)
    assert [h[0].tokens for h in hyps] == [[W1], [W1, W1]]
    assert [h[0].score for h in hyps] == pytest.approx([math.log(0.3), math.log(0.81)], rel=1e-6)
    assert hyps[0][0].attention.argmax(-1).tolist() == [BOS % 6, W1 % 6]
    assert hyps[1][0].attention.shape == (3, 3)


def test_beam_one_equals_greedy_on_scripted_model():
    src, lengths, limit = torch.full((2, 6), 7), torch.tensor([6, 3]), torch.tensor([10, 2])
    greedy = greedy_search(ScriptedModel(SCRIPTS), src, lengths, limit)
    beam = beam_search(ScriptedModel(SCRIPTS), src, lengths, limit, beam_size=1, alpha=0.0)
    assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
    assert [h[0].score for h in beam] == pytest.approx([h[0].score for h in greedy])


# ---------------------------------------------------------------- small real models

SOURCES = [[4, 5, 6], [7, 8, 9, 10, 11, 12], [13], [5, 5, 5, 5], [14, 15], [6, 7, 8, 9, 10],
           [11, 13, 15, 4, 6, 8, 10], [9, 4]]


@pytest.fixture
def random_model(make_model):
    torch.manual_seed(0)
    model = make_model(vocab_size=18, deterministic=False, decoder={"cell": "lstm"})
    with torch.no_grad():  # a peakier output layer, and no pad/unk/bos: a mix of lengths
        model.generator.weight.mul_(6.0)
        model.generator.bias[:EOS] -= 10.0
    return model


def test_beam_one_equals_greedy_on_random_model(random_model):
    from seq2seq.batch import collate
    batch = collate(SOURCES)
    limit = max_lengths(batch.src_lengths, 1.5, 3)
    greedy = greedy_search(random_model, batch.src, batch.src_lengths, limit)
    beam = beam_search(random_model, batch.src, batch.src_lengths, limit, beam_size=1, alpha=0.0)
    assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
    assert [h[0].score for h in beam] == pytest.approx([h[0].score for h in greedy], abs=1e-4)
    lengths = {len(h[0].tokens) for h in greedy}
    assert len(lengths) > 1  # not every sentence runs to its limit: the test sees EOS decisions


@pytest.mark.parametrize("beam", [1, 5])
def test_batch_of_one_equals_batch_of_eight(random_model, beam):
    cfg = DecodingConfig(beam_size=beam, nbest=beam, max_length_ratio=1.5, max_length_offset=3)
    cpu = torch.device("cpu")
    alone = decode_ids(random_model, SOURCES, cfg, cpu, batch_size=1, nbest=beam)
    batched = decode_ids(random_model, SOURCES, cfg, cpu, batch_size=8, nbest=beam)
    assert all(len(h) == beam for h in batched)
    assert len({len(h.tokens) for hs in batched for h in hs}) > 2
    assert [[h.tokens for h in hs] for hs in alone] == [[h.tokens for h in hs] for hs in batched]
    for a, b in zip(alone, batched):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_decode_ids_keeps_input_order(random_model):
    cfg = DecodingConfig(beam_size=3, max_length_ratio=1.5, max_length_offset=3)
    cpu = torch.device("cpu")
    forward = decode_ids(random_model, SOURCES, cfg, cpu, batch_size=3)
    random_model.train()
    backward = decode_ids(random_model, SOURCES[::-1], cfg, cpu, batch_size=3)
    assert [h[0].tokens for h in forward] == [h[0].tokens for h in backward[::-1]]
    assert random_model.training  # the caller's mode is restored
