"""Sampling (seq2seq/sampling.py): the filter's golden values, a scripted-probability model
(top-k 1, a one-token nucleus and temperature near 0 are greedy; frequencies of 2000 samples
match the filtered distribution), seeds, batch independence, scores, and the Python API."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import DecodingConfig
from seq2seq.decoding import decode_ids
from seq2seq.errors import UserError
from seq2seq.sampling import Sampling, filter_log_probs, parse_sampling, sample_search, sentence_generator
from seq2seq.search import greedy_search
from seq2seq.vocab import EOS
from test_search import SCRIPTS, SOURCES, W1, W2, ScriptedModel, random_model, teacher_forced_scores  # noqa: F401

CPU = torch.device("cpu")
P = torch.tensor([[0.5, 0.3, 0.15, 0.05]])


def probs(**kw) -> list[float]:
    return filter_log_probs(P.log(), **kw).exp()[0].tolist()


def test_filter_golden_values():
    assert probs() == pytest.approx([0.5, 0.3, 0.15, 0.05])
    assert probs(top_k=2) == pytest.approx([0.625, 0.375, 0, 0])
    assert probs(top_p=0.7) == pytest.approx([0.625, 0.375, 0, 0])  # 0.5 + 0.3 reach 0.7
    assert probs(top_p=0.9) == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])
    assert probs(top_p=0.4) == pytest.approx([1, 0, 0, 0])  # the most probable token stays
    root = [math.sqrt(p) for p in P[0].tolist()]
    assert probs(temperature=2.0) == pytest.approx([r / sum(root) for r in root])
    # temperature first (P ** 2 / .365 = .685 .247 .062 .007), then top 3, then the 0.8 nucleus
    assert probs(temperature=0.5, top_k=3, top_p=0.8) == pytest.approx(
        [0.25 / 0.34, 0.09 / 0.34, 0, 0])
    ties = filter_log_probs(torch.tensor([[1.0, 1.0, 0.0, float("-inf")]]), top_k=1).exp()[0]
    assert ties.tolist() == pytest.approx([0.5, 0.5, 0, 0])  # tied with the k-th: kept
    assert probs(temperature=1e-4) == pytest.approx([1, 0, 0, 0])


@pytest.mark.parametrize("scheme, temperature", [
    ("topk:0", None), ("topk:-2", None), ("topk:1.5", None), ("topk", None), ("topp:0", None),
    ("topp:1.5", None), ("topp:x", None), ("nucleus:0.9", None), ("topk:5", 0.0), ("topp:0.9", -1.0),
    ("topk:5", float("nan")), ("greedy", 0.0)])
def test_bad_schemes_and_temperatures_are_user_errors(scheme, temperature):
    with pytest.raises(UserError) as info:
        parse_sampling(scheme, temperature, where="--sampling")
    message = str(info.value)
    assert "\n" not in message
    assert ("temperature" in message) if temperature is not None else (f"--sampling {scheme!r}" in message)


def test_parse_sampling():
    assert parse_sampling("greedy") is None and parse_sampling("beam", 0.5, 3) is None
    assert parse_sampling("topk:10") == Sampling(top_k=10)
    assert parse_sampling("topp:1", 0.7, 4) == Sampling(top_p=1.0, temperature=0.7, seed=4)


def run_samples(scripts, scheme, n=1, seed=0, temperature=None, max_len=(10, 2), **kw):
    src = torch.full((len(scripts), 6), 7)
    lengths = torch.tensor([6, 3][:len(scripts)])
    sampling = parse_sampling(scheme, temperature, seed)
    return sample_search(ScriptedModel(scripts), src, lengths, torch.tensor(max_len[:len(scripts)]),
                         sampling=sampling, num_samples=n,
                         generators=[sentence_generator(seed, i) for i in range(len(scripts))], **kw)


@pytest.mark.parametrize("scheme, temperature", [("topk:1", None), ("topp:0.4", None),
                                                 ("topk:1", 3.0), ("topp:1", 1e-3)])
def test_one_token_cuts_and_near_zero_temperature_are_greedy(scheme, temperature):
    """Top-k 1; a nucleus of 0.4, which every step's most probable token reaches alone; and no
    cut at temperature 0.001: the samples are greedy search's output, scored as greedy scores
    (the model's log-probability, sentence 1 cut at its limit paying P(EOS))."""
    src, lengths, limit = torch.full((2, 6), 7), torch.tensor([6, 3]), torch.tensor([10, 2])
    greedy = greedy_search(ScriptedModel(SCRIPTS), src, lengths, limit, return_attention=True)
    sampled = run_samples(SCRIPTS, scheme, n=3, temperature=temperature, return_attention=True)
    for g, s in zip(greedy, sampled):
        assert len(s) == 3
        for h in s:
            assert h.tokens == g[0].tokens
            assert h.score == pytest.approx(g[0].score, rel=1e-6)
            assert torch.equal(h.attention, g[0].attention)


THREE = [{(): {W1: 0.5, W2: 0.3, EOS: 0.2}}]  # then EOS for sure: one token or none


@pytest.mark.parametrize("scheme, temperature, expected", [
    ("topk:3", None, [0.5, 0.3, 0.2]),
    ("topk:2", None, [0.625, 0.375, 0.0]),
    ("topp:0.85", 0.5, [0.25 / 0.34, 0.09 / 0.34, 0.0]),  # P ** 2 / .38 = .66 .24 .11: EOS cut
    ("topk:3", 2.0, [math.sqrt(p) / sum(map(math.sqrt, (0.5, 0.3, 0.2))) for p in (0.5, 0.3, 0.2)]),
])
def test_frequencies_of_2000_samples_match_the_filtered_distribution(scheme, temperature, expected):
    """Pearson's chi-square over the kept tokens below 13.8 (2 degrees of freedom, p = 0.001);
    deterministic under the seed. A cut token is never drawn."""
    [hyps] = run_samples(THREE, scheme, n=2000, seed=7, temperature=temperature)
    counts = [sum(h.tokens == tokens for h in hyps) for tokens in ([W1], [W2], [])]
    assert sum(counts) == 2000
    chi2 = 0.0
    for count, p in zip(counts, expected):
        if p == 0.0:
            assert count == 0
        else:
            chi2 += (count - 2000 * p) ** 2 / (2000 * p)
    assert chi2 < 13.8, (counts, expected)
    assert sum((c - 2000 * p) ** 2 / (2000 * p) for c, p in zip(counts, (0.4, 0.4, 0.2))) > 13.8


def test_samples_are_sorted_scored_and_repeatable():
    first = run_samples(SCRIPTS, "topk:3", n=16, seed=5)
    again = run_samples(SCRIPTS, "topk:3", n=16, seed=5)
    other = run_samples(SCRIPTS, "topk:3", n=16, seed=6)
    assert [[h.tokens for h in s] for s in first] == [[h.tokens for h in s] for s in again]
    assert [[h.tokens for h in s] for s in first] != [[h.tokens for h in s] for s in other]
    for sentence in first:
        scores = [h.score for h in sentence]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in sentence}) > 1  # samples, not one search result
    for h in first[0]:  # the script's P(tokens, EOS)
        steps = [(tuple(h.tokens[:t]), token) for t, token in enumerate(h.tokens + [EOS])]
        p = math.prod(SCRIPTS[0].get(prefix, {EOS: 1.0})[token] for prefix, token in steps)
        assert h.score == pytest.approx(math.log(p), rel=1e-6)
    assert all(len(h.tokens) <= 2 for h in first[1])  # sentence 1's length limit


def test_end_rules_apply_to_samples():
    free = run_samples(SCRIPTS[:1], "topk:3", n=300, seed=1)[0]
    assert any(h.tokens == [] for h in free)  # EOS first: P 0.1
    held = run_samples(SCRIPTS[:1], "topk:3", n=300, seed=1, min_length=1)[0]
    assert all(h.tokens for h in held)


@pytest.mark.parametrize("scheme", ["topk:4", "topp:0.9"])
def test_samples_do_not_depend_on_the_batch(random_model, scheme):
    """Batches of 1 and 8 (sorted by length, so each source's neighbours change) give the same
    samples; a later part of the input decoded alone with first_index gives its part too."""
    cfg = DecodingConfig(max_length_ratio=1.5, max_length_offset=3)
    sampling = parse_sampling(scheme, 1.5, 11)

    def run(sources, batch_size, first_index=0):
        hyps = decode_ids(random_model, sources, cfg, CPU, precision="fp32", batch_size=batch_size,
                          nbest=3, sampling=sampling, first_index=first_index)
        return [[h.tokens for h in hs] for hs in hyps]

    batched = run(SOURCES, 8)
    assert all(len(hs) == 3 for hs in batched)
    assert len({tuple(t) for hs in batched for t in hs}) > len(SOURCES)  # samples differ
    assert run(SOURCES, 1) == batched
    assert run(SOURCES[3:], 2, first_index=3) == batched[3:]
    assert run(SOURCES[3:], 2) != batched[3:]  # the line's position is part of its seed


def test_sample_scores_are_the_teacher_forced_log_probability(random_model):
    from seq2seq.batch import collate
    batch = collate(SOURCES)
    limit = (batch.src_lengths.float() * 0.5).long() + 1  # tight: some samples end at the limit
    hyps = sample_search(random_model, batch.src, batch.src_lengths, limit,
                         sampling=Sampling(top_k=5, temperature=2.0), num_samples=2,
                         generators=[sentence_generator(0, i) for i in range(len(SOURCES))])
    pairs = [(src, h) for src, hs in zip(SOURCES, hyps) for h in hs]
    assert [h.score for _, h in pairs] == pytest.approx(teacher_forced_scores(random_model, pairs), abs=1e-4)


# ---------------------------------------------------------------- the Python API

@pytest.fixture
def translator(make_model, char_vocab):
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks.translation.translator import Translator
    torch.manual_seed(0)
    model = make_model(vocab_size=len(char_vocab), deterministic=False, decoder={"cell": "lstm"})
    with torch.no_grad():  # as test_translator.py's: a mix of lengths
        model.generator.weight.mul_(6.0)
        model.generator.bias[:EOS] -= 10.0
    recipe = recipe_from_dict({"decoding": {"beam_size": 3, "max_length_ratio": 1.5,
                                            "max_length_offset": 3}})
    return Translator(model, char_vocab, char_vocab, recipe, CPU)


def test_translator_samples(translator):
    lines = ["abc", "", "hgfe dab", "c", "dd"]
    one = translator.translate(lines, sampling="topp:0.95", temperature=1.5, seed=2, nbest=4)
    assert [len(x) for x in one] == [4, 1, 4, 4, 4] and one[1] == [""]
    assert translator.translate(lines, sampling="topp:0.95", temperature=1.5, seed=2, nbest=4) == one
    assert translator.translate(lines[2:], sampling="topp:0.95", temperature=1.5, seed=2, nbest=4,
                                first_index=2) == one[2:]
    [full] = translator.translate_full(["abc"], sampling="topk:3", attention=True)
    assert full.hypotheses[0].attention.shape == (len(full.hypotheses[0].pieces), len(full.source_pieces))
    greedy = translator.translate(lines, 1)
    assert translator.translate(lines, sampling="greedy") == greedy
    assert translator.translate(lines, sampling="topk:1") == greedy
    assert translator.translate(lines, sampling="topk:5", nbest=7)  # more samples than the beam


def test_translator_sampling_mistakes(translator):
    with pytest.raises(UserError, match="topk:0"):
        translator.translate(["abc"], sampling="topk:0")
    with pytest.raises(UserError, match="temperature"):
        translator.translate(["abc"], sampling="topk:2", temperature=0)
    with pytest.raises(UserError, match="beam_size is 3"):
        translator.translate(["abc"], 3, sampling="greedy")
    with pytest.warns(UserWarning, match="temperature and seed"):
        translator.translate(["abc"], temperature=0.5)
    with pytest.warns(UserWarning, match="beam_size 3 is not used"):
        translator.translate(["abc"], 3, sampling="topk:2")
