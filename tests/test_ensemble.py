"""Ensembles (seq2seq/tasks/translation/ensemble.py): an ensemble of one model is that model;
two scripted models whose mean log-probabilities pick a sentence that neither picks alone, in
beam and greedy search; on real models, the ensemble's score is the mean of the members'
teacher-forced log-probabilities; what the members must share."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from seq2seq.config import DecodingConfig, recipe_from_dict
from seq2seq.decoding import decode_ids
from seq2seq.errors import UserError
from seq2seq.search import beam_search, greedy_search
from seq2seq.tasks.translation.ensemble import Ensemble, check_members
from seq2seq.vocab import BOS, EOS
from test_search import ScriptedModel

A, B, C = 4, 5, 6  # pad 0, unk 1, bos 2, eos 3, three words
V = 7

# Tokens so far -> next-token probabilities; unlisted: EOS for sure. Sentence probabilities:
#            [A]    [B]    [A C]   [C]
# FIRST      0.4    0.1    0.3     0.2      alone: [A] (greedy: A 0.7, then EOS 4/7)
# SECOND     0.05   0.4    0.3     0.15     alone: [B] (greedy: B 0.5, then EOS 0.8)
# geometric  0.141  0.2    0.3     0.173    together: [A C], which neither picks
FIRST = {(): {A: 0.7, B: 0.1, C: 0.2}, (A,): {EOS: 4 / 7, C: 3 / 7}}
SECOND = {(): {A: 0.35, B: 0.5, C: 0.15}, (A,): {C: 6 / 7, EOS: 1 / 7}, (B,): {EOS: 0.8, A: 0.2}}


class Scripted(ScriptedModel, nn.Module):
    """A member whose step probabilities are written by hand, one script per sentence of the
    batch (test_search's scripted model: memory, sentence ids; state, the tokens fed so far, so a
    wrong reorder of one member's state reads the wrong script row). Attention: one-hot on a
    position of its own."""

    def __init__(self, scripts: list[dict], position: int):
        nn.Module.__init__(self)
        ScriptedModel.__init__(self, scripts, src_len=4, vocab_size=V)
        self.position = position

    def attention(self, prev):
        weights = torch.zeros(prev.size(0), self.src_len)
        weights[:, self.position] = 1.0
        return weights


def search(model, beam: int, nbest: int = 1):
    """Two sentences: the scripts as written, and with the members' scripts swapped."""
    src, lengths, max_len = torch.full((2, 4), 7), torch.tensor([4, 4]), torch.tensor([5, 5])
    if beam == 1:
        return greedy_search(model, src, lengths, max_len, return_attention=True)
    return beam_search(model, src, lengths, max_len, beam_size=beam, alpha=0.0, nbest=nbest,
                       return_attention=True)


@pytest.mark.parametrize("beam", [1, 2])
def test_the_mean_picks_a_sentence_neither_member_picks_alone(beam):
    first, second = Scripted([FIRST, SECOND], 0), Scripted([SECOND, FIRST], 1)
    assert [h[0].tokens for h in search(first, beam)] == [[A], [B]]
    assert [h[0].tokens for h in search(second, beam)] == [[B], [A]]
    both = search(Ensemble([first, second]), beam)
    assert [h[0].tokens for h in both] == [[A, C], [A, C]]
    # the score: the mean of the members' log-probabilities, log 0.3 for both
    assert [h[0].score for h in both] == pytest.approx([math.log(0.3)] * 2, rel=1e-6)
    # attention: the members' mean, one half on each one's position, at every step
    assert torch.equal(both[0][0].attention, torch.tensor([[0.5, 0.5, 0, 0]] * 3))


def test_the_ensembles_nbest_list_ranks_by_the_mean():
    first, second = Scripted([FIRST], 0), Scripted([SECOND], 1)
    src, lengths = torch.full((1, 4), 7), torch.tensor([4])
    [hyps] = beam_search(Ensemble([first, second]), src, lengths, torch.tensor([5]), beam_size=2,
                         alpha=0.0, nbest=2)
    assert [h.tokens for h in hyps] == [[A, C], [B]]  # 0.3, then sqrt(0.1 * 0.4) = 0.2
    assert [h.score for h in hyps] == pytest.approx([math.log(0.3), math.log(0.2)], rel=1e-6)


SOURCES = [[5, 9, 7, 4], [6, 11, 6], [], [10, 4, 8, 9, 5, 7]]


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("beam, nbest", [(1, 1), (3, 2)])
@pytest.mark.parametrize("times", [1, 2])
def test_an_ensemble_of_one_model_is_that_model(make_model, copy, beam, nbest, times):
    """One model, or the same model twice: the same tokens, scores and attention, exactly; with
    copy, extended source ids (12, 13: beyond V = 12) that the output copies."""
    model = make_model(copy=copy)
    if copy:  # p_gen near 0: the output copies source pieces, extended ones among them
        with torch.no_grad():
            model.copy.gate.bias.fill_(-10.0)
    sources = [[12, 5, 13], [13, 12, 12, 6], [], [5, 9, 7, 4, 12]] if copy else SOURCES
    cfg = DecodingConfig(max_length_ratio=1.5, max_length_offset=3)
    run = dict(precision="fp32", beam_size=beam, nbest=nbest, return_attention=True, batch_size=2)
    alone = decode_ids(model, sources, cfg, torch.device("cpu"), **run)
    together = decode_ids(Ensemble([model] * times), sources, cfg, torch.device("cpu"), **run)
    assert [[h.tokens for h in hs] for hs in together] == [[h.tokens for h in hs] for hs in alone]
    assert [[h.score for h in hs] for hs in together] == [[h.score for h in hs] for hs in alone]
    for hs, gs in zip(together, alone):
        assert all(torch.equal(h.attention, g.attention) for h, g in zip(hs, gs))
    if copy:
        assert any(t >= 12 for hs in alone for h in hs for t in h.tokens)  # it did copy


def teacher_forced(model, src: list[int], tokens: list[int]) -> float:
    """log P(tokens + EOS | src) under `model`, fed the tokens one by one."""
    with torch.no_grad():
        memory, state = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
        total = 0.0
        for prev, nxt in zip([BOS] + tokens, tokens + [EOS]):
            log_probs, _, state = model.step(torch.tensor([prev]), memory, state)
            total += float(log_probs[0, nxt])
    return total


def test_on_real_models_the_score_is_the_mean_of_the_members_log_probabilities(make_model):
    """Greedy (no length penalty): each output's score is the mean of the members' own
    teacher-forced log-probabilities of it; architectures differ (GRU; LSTM, luong, 2 layers)."""
    first = make_model()
    second = make_model(encoder={"cell": "lstm", "hidden_size": 6},
                        decoder={"cell": "lstm", "hidden_size": 10, "num_layers": 2},
                        attention={"type": "general"})
    sources = [s for s in SOURCES if s]
    cfg = DecodingConfig(max_length_ratio=1.5, max_length_offset=3)
    hyps = decode_ids(Ensemble([first, second]), sources, cfg, torch.device("cpu"), precision="fp32",
                      beam_size=1)
    alone = decode_ids(first, sources, cfg, torch.device("cpu"), precision="fp32", beam_size=1)
    assert [h[0].tokens for h in hyps] != [h[0].tokens for h in alone]  # the second one counts
    for src, [h] in zip(sources, hyps):
        mean = (teacher_forced(first, src, h.tokens) + teacher_forced(second, src, h.tokens)) / 2
        assert h.score == pytest.approx(mean, abs=1e-4)


def test_members_all_copy_or_none_does(make_model, char_vocab):
    plain, copying = make_model(13), make_model(13, copy=True)
    with pytest.raises(ValueError, match="every member copies"):
        Ensemble([plain, copying])
    recipe = recipe_from_dict({})
    dirs = [Path("runs/a"), Path("runs/b")]
    with pytest.raises(UserError, match=r"^runs/b copies \(model.copy\) and runs/a does not"):
        check_members(dirs, [recipe] * 2, [(char_vocab, char_vocab)] * 2, [plain, copying])
    check_members(dirs, [recipe] * 2, [(char_vocab, char_vocab)] * 2, [copying, copying])
