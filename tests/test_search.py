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


# One sentence whose maximum length (2) cuts its most probable prefix 'w1 w1' (0.54), where EOS is
# unlikely (0.05): ended at the limit it is worth 0.027, less than 'w2' (0.24), which ends by itself.
LIMITED = [{
    (): {W1: 0.6, W2: 0.4},
    (W1,): {W1: 0.9, EOS: 0.1},  # w1 EOS: 0.06
    (W2,): {EOS: 0.6, W1: 0.4},  # w2 EOS: 0.24
    (W1, W1): {W1: 0.95, EOS: 0.05},  # w1 w1 EOS (forced): 0.027
    (W2, W1): {W1: 0.8, EOS: 0.2},  # w2 w1 EOS (forced): 0.032
}]


class Rows:
    """A memory or state: one tensor whose rows follow `select`."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows

    def select(self, index: torch.Tensor) -> "Rows":
        return Rows(self.rows.index_select(0, index))


class ScriptedModel:
    """memory: sentence ids; state: the tokens fed so far (BOS first), so a wrong beam reorder
    of the state shows up as the wrong script row."""

    def __init__(self, scripts, src_len: int = 6, vocab_size: int = V):
        self.scripts, self.src_len, self.vocab_size, self.steps = scripts, src_len, vocab_size, 0

    def encode(self, src, lengths):
        return Rows(torch.arange(src.size(0))), Rows(torch.empty(src.size(0), 0, dtype=torch.long))

    def step(self, prev, memory, state):
        self.steps += 1
        history = torch.cat([state.rows, prev.unsqueeze(1)], 1)  # (N, t+1)
        log_probs = torch.full((prev.size(0), self.vocab_size), float("-inf"))
        for row, (sentence, fed) in enumerate(zip(memory.rows.tolist(), history.tolist())):
            assert fed[0] == BOS
            for token, p in self.scripts[sentence].get(tuple(fed[1:]), {EOS: 1.0}).items():
                log_probs[row, token] = math.log(p)
        return log_probs, self.attention(prev), Rows(history)

    def attention(self, prev):
        """One-hot on (last token fed) mod S, so each hypothesis has its own pattern."""
        return torch.nn.functional.one_hot(prev % self.src_len, self.src_len).float()


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
    # sentence 1 is cut at its maximum length; the forced EOS costs the model's P(EOS)
    assert [h.tokens for h in hyps[1]] == [[W1, W1], [W1, W2]]
    assert [h.score for h in hyps[1]] == pytest.approx([math.log(0.81 * 0.04), math.log(0.063 * 0.1)],
                                                       rel=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_forced_eos_pays_its_probability_in_beam(alpha):
    """fairseq's rule at the length limit: every token but EOS gets -inf, EOS keeps its own
    log-probability. 'w1 w1' (0.54 before EOS) ends at 0.027 and falls behind 'w2' (0.24) and
    'w2 w1' (0.032); with a forced EOS that cost nothing 'w1 w1' came first."""
    hyps = beam_search(ScriptedModel(LIMITED), torch.full((1, 6), 7), torch.tensor([6]),
                       torch.tensor([2]), beam_size=2, alpha=alpha, nbest=2)[0]
    assert [h.tokens for h in hyps] == [[W2], [W2, W1]]
    assert [h.score for h in hyps] == pytest.approx(
        [math.log(0.24) / lp(2, alpha), math.log(0.032) / lp(3, alpha)], rel=1e-6)


def test_length_limit_wins_over_min_length():
    """min_length beyond the limit: the limit still ends each hypothesis, at its own P(EOS)."""
    src, lengths, limit = torch.full((1, 6), 7), torch.tensor([6]), torch.tensor([2])
    greedy = greedy_search(ScriptedModel(LIMITED), src, lengths, limit, min_length=5)[0][0]
    assert greedy.tokens == [W1, W1] and greedy.score == pytest.approx(math.log(0.027), rel=1e-6)
    beam = beam_search(ScriptedModel(LIMITED), src, lengths, limit, beam_size=2, alpha=0.0, nbest=2,
                       min_length=5)[0]
    assert [h.tokens for h in beam] == [[W2, W1], [W1, W1]]  # 'w2' may not end at step 1 now
    assert [h.score for h in beam] == pytest.approx([math.log(0.032), math.log(0.027)], rel=1e-6)


def test_forced_eos_pays_its_probability_in_greedy():
    hyps = greedy_search(ScriptedModel(LIMITED), torch.full((1, 6), 7), torch.tensor([6]),
                         torch.tensor([2]))
    assert hyps[0][0].tokens == [W1, W1]  # the argmax path, cut at its limit
    assert hyps[0][0].score == pytest.approx(math.log(0.6 * 0.9 * 0.05), rel=1e-6)  # a log-probability


def test_beam_with_length_penalty_prefers_longer():
    hyps = run_beam(alpha=1.0)
    assert [h.tokens for h in hyps[0]] == [[W2, W1], [W1]]
    assert [h.score for h in hyps[0]] == pytest.approx(
        [math.log(0.288) / lp(3, 1.0), math.log(0.30) / lp(2, 1.0)], rel=1e-6)
    assert [h.tokens for h in hyps[1]] == [[W1, W1], [W1, W2]]
    assert [h.score for h in hyps[1]] == pytest.approx(
        [math.log(0.81 * 0.04) / lp(3, 1.0), math.log(0.063 * 0.1) / lp(3, 1.0)], rel=1e-6)


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
    assert cut[1][0].tokens == [] and cut[1][0].score == pytest.approx(math.log(0.03), rel=1e-6)


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
    assert [h[0].score for h in hyps] == pytest.approx([math.log(0.3), math.log(0.81 * 0.04)], rel=1e-6)
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


def teacher_forced_scores(model, pairs) -> list[float]:
    """Each (source, hypothesis) pair's summed log-probability of its tokens and EOS, teacher forced."""
    from seq2seq.batch import collate
    forced = collate([src for src, _ in pairs], [h.tokens for _, h in pairs])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(forced)[0].float(), -1)  # (N, T, V)
    picked = log_probs.gather(-1, forced.tgt_out.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(forced.tgt_out == 0, 0.0).sum(-1).tolist()


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


@pytest.mark.parametrize("beam", [1, 4])
def test_score_is_the_teacher_forced_log_probability(random_model, beam):
    """Hypothesis.score (alpha 0) is log P(tokens, EOS | source), also for hypotheses cut at
    their length limit: the model's own loss computation says so, for every n-best entry."""
    from seq2seq.batch import collate
    batch = collate(SOURCES)
    limit = max_lengths(batch.src_lengths, 0.5, 1)  # tight: some hypotheses end at the limit
    hyps = beam_search(random_model, batch.src, batch.src_lengths, limit, beam_size=beam, alpha=0.0,
                       nbest=beam)
    pairs = [(src, h) for src, hs in zip(SOURCES, hyps) for h in hs]
    assert len(pairs) == beam * len(SOURCES)
    assert any(len(h.tokens) == int(m) for hs, m in zip(hyps, limit) for h in hs)
    assert [h.score for _, h in pairs] == pytest.approx(teacher_forced_scores(random_model, pairs), abs=1e-4)


@pytest.mark.parametrize("beam", [1, 5])
def test_batch_of_one_equals_batch_of_eight(random_model, beam):
    cfg = DecodingConfig(beam_size=beam, nbest=beam, max_length_ratio=1.5, max_length_offset=3)
    cpu = torch.device("cpu")
    alone = decode_ids(random_model, SOURCES, cfg, cpu, precision="fp32", batch_size=1, nbest=beam)
    batched = decode_ids(random_model, SOURCES, cfg, cpu, precision="fp32", batch_size=8, nbest=beam)
    assert all(len(h) == beam for h in batched)
    assert len({len(h.tokens) for hs in batched for h in hs}) > 2
    assert [[h.tokens for h in hs] for hs in alone] == [[h.tokens for h in hs] for hs in batched]
    for a, b in zip(alone, batched):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_decode_ids_keeps_input_order(random_model):
    cfg = DecodingConfig(beam_size=3, max_length_ratio=1.5, max_length_offset=3)
    cpu = torch.device("cpu")
    forward = decode_ids(random_model, SOURCES, cfg, cpu, precision="fp32", batch_size=3)
    random_model.train()
    backward = decode_ids(random_model, SOURCES[::-1], cfg, cpu, precision="fp32", batch_size=3)
    assert [h[0].tokens for h in forward] == [h[0].tokens for h in backward[::-1]]
    assert random_model.training  # the caller's mode is restored
