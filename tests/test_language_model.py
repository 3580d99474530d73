"""Language model, in process: the batch layouts by hand (tbptt streams and segments, windows,
scoring rows), units and text, the carried state against a full unrolled run (losses and
gradients through the trainer's own step), scoring in segments, overfitting a tiny text until
greedy generation reproduces it, and seeded sampling (seq2seq/tasks/language_model/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seq2seq.config import VocabConfig, recipe_from_dict
from seq2seq.tasks.language_model.data import (TextStreams, Windows, cut_rows, decode_units, encode_text, pad_rows,
                                               stream)
from seq2seq.tasks.language_model.generator import LanguageModel, generate_units
from seq2seq.tasks.language_model.metric import scores
from seq2seq.tasks.language_model.model import build_language_model, detach, row_nats
from seq2seq.tasks.language_model.training import LanguageModelTrainer, ValidText
from seq2seq.vocab import EOS, PAD, UNK, train_sentencepiece

POEM = "twinkle twinkle little star\nhow i wonder what you are\n"


def recipe(cell: str = "lstm", **lm):
    return recipe_from_dict({"task": "language_model", "language_model": {"bptt_length": 3, "streams": 2, **lm},
                             "model": {"embedding_size": 6, "decoder": {"cell": cell, "hidden_size": 7,
                                                                        "num_layers": 2}},
                             "training": {"device": "cpu", "clip_norm": 0.0, "precision": "fp32"}})  # exact


@pytest.fixture(scope="module")
def poem_vocab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_vocab")
    (folder / "poem.txt").write_text(POEM, encoding="utf-8")
    return train_sentencepiece([folder / "poem.txt"], folder / "spm", VocabConfig(model_type="char", size=40),
                               verbatim=True)


# ---------------------------------------------------------------- layouts


def test_tbptt_streams_and_segments_by_hand():
    streams = TextStreams(torch.arange(11), streams=2, bptt=3)  # unit 10 fills no row: dropped
    assert streams.rows.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert len(streams) == 2  # 4 inputs a row: segments of 3 and 1
    assert streams.plan(seed=1, epoch=0) == streams.plan(seed=9, epoch=4) == [[0], [1]]
    x, y = streams.batch(np.array([0]))
    assert x.tolist() == [[0, 1, 2], [5, 6, 7]] and y.tolist() == [[1, 2, 3], [6, 7, 8]]
    x, y = streams.batch(np.array([1]))
    assert x.tolist() == [[3], [8]] and y.tolist() == [[4], [9]]
    with pytest.raises(ValueError):
        TextStreams(torch.arange(5), streams=3, bptt=2)  # one unit a row: nothing to predict


def test_windows_cover_the_text_in_a_seeded_shuffle():
    data = torch.arange(100, 123)  # 23 units
    windows = Windows(data, streams=2, bptt=4)
    plan = windows.plan(seed=1, epoch=0)
    assert [len(b) for b in plan][:-1] == [2] * (len(plan) - 1)
    starts = np.concatenate(plan)
    offset = starts.min()
    assert 0 <= offset < 4 and sorted(starts.tolist()) == list(range(offset, 23 - 4, 4))  # end to end
    assert all(np.array_equal(a, b) for a, b in zip(plan, windows.plan(seed=1, epoch=0)))
    assert [b.tolist() for b in windows.plan(seed=1, epoch=1)] != [b.tolist() for b in plan]
    x, y = windows.batch(np.array([5, 0]))
    assert x.tolist() == [[105, 106, 107, 108], [100, 101, 102, 103]]
    assert y.tolist() == [[106, 107, 108, 109], [101, 102, 103, 104]]


def test_scoring_rows_count_every_target_once():
    x, y = cut_rows(torch.arange(10, 18), rows=3)  # 7 targets: rows of 3, 3, 1
    assert x.tolist() == [[10, 11, 12], [13, 14, 15], [16, PAD, PAD]]
    assert y.tolist() == [[11, 12, 13], [14, 15, 16], [17, PAD, PAD]]
    x, y = pad_rows([torch.tensor([EOS, 7, 8]), torch.tensor([EOS, 9])])
    assert x.tolist() == [[EOS, 7], [EOS, PAD]] and y.tolist() == [[7, 8], [9, PAD]]


def test_units_spell_the_text_exactly(poem_vocab):
    text = "  twinkle,\n\nhow  are you\n"  # spaces kept, blank line, ',' and 'y' ... unknown: ','
    units = encode_text(poem_vocab, text)
    assert units.count(EOS) == 3 and UNK in units
    assert decode_units(poem_vocab, units) == text.replace(",", "\u2047")
    assert len(encode_text(poem_vocab, POEM)) == len(POEM)  # character units: one a character
    assert stream([5, 6]).tolist() == [EOS, 5, 6]


def test_scores_by_hand():
    s = scores(nats=6.0, units=4, characters=3)
    assert s["loss"] == 1.5 and s["nats_per_char"] == 2.0 and abs(s["bpc"] - 2.0 / np.log(2)) < 1e-12
    assert abs(s["ppl"] - np.exp(1.5)) < 1e-12 and (s["units"], s["characters"]) == (4, 3)


# ---------------------------------------------------------------- the carried state


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole_lstm", "wm_lstm"])
def test_carried_state_gives_the_full_runs_losses(cell, tmp_path, fill_weights):
    """The trainer's own steps over consecutive segments, the state carried: each segment's loss
    is the full unrolled run's at its positions; with one segment covering all (no truncation)
    the gradients are the full run's too."""
    data = torch.tensor([EOS, 4, 5, 6, 4, 7, 8, 5, 4, 6, 9, 5, 7, 6, 4, 8, 9, 4])  # 18 units: 2 rows of 9
    for bptt in (3, 8):
        r = recipe(cell, bptt_length=bptt)
        model = fill_weights(build_language_model(r.model, 10), 0.4)
        corpus = TextStreams(data, 2, bptt)
        trainer = LanguageModelTrainer(model, r, tmp_path / f"{cell}{bptt}", corpus=corpus,
                                       valid=ValidText(*cut_rows(data, 2), 17), vocab=None,
                                       device=torch.device("cpu"))
        trainer.optimizer.step = lambda: None  # the weights stay: every segment sees the same model
        model.eval()  # (no dropout here; the full run is eval too)
        losses = [trainer.train_step(batch) for batch in corpus.plan(1, 0)]
        step_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        logits, _ = model(corpus.rows[:, :-1])  # (2, 8, V): no truncation
        full = F.cross_entropy(logits.flatten(0, 1), corpus.rows[:, 1:].flatten(), reduction="none").view(2, 8)
        values = full.detach()
        seg = [values[:, s:s + bptt] for s in range(0, 8, bptt)]
        assert len(losses) == len(seg)
        for (loss, count, _), part in zip(losses, seg):
            assert count == part.numel()
            assert abs(loss - float(part.mean())) < 1e-5
        if bptt == 8:
            full.mean().backward()
            for name, p in model.named_parameters():
                torch.testing.assert_close(step_grads[name], p.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_scoring_in_segments_equals_one_pass(fill_weights):
    model = fill_weights(build_language_model(recipe("lstm").model, 10), 0.4).eval()
    inputs, targets = cut_rows(torch.tensor([EOS, 4, 5, 6, 7, 8, 9, 4, 5, 6, 7, 8]), rows=2)
    one, count = row_nats(model, inputs, targets, 100, torch.device("cpu"))
    cut, same = row_nats(model, inputs, targets, 2, torch.device("cpu"))
    torch.testing.assert_close(one, cut) and torch.testing.assert_close(count, same)
    logits, _ = model(inputs)
    by_hand = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none").sum(1)
    torch.testing.assert_close(one, by_hand.double(), rtol=1e-6, atol=1e-6)
    assert count.tolist() == [6, 5]


def test_detach_keeps_values_and_cuts_history():
    h = torch.ones(2, 3, requires_grad=True) * 2
    out = detach((h, h + 1))
    assert not out[0].requires_grad and out[1].tolist() == [[3.0] * 3] * 2


# ---------------------------------------------------------------- generation


def overfit_poem(vocab, steps: int = 400):
    """An LSTM trained on POEM twenty times over, in two streams with the state carried."""
    torch.manual_seed(0)
    r = recipe_from_dict({"task": "language_model", "model": {"embedding_size": 16, "decoder": {
        "cell": "lstm", "hidden_size": 48}}, "training": {"device": "cpu"}})
    model = build_language_model(r.model, len(vocab))
    corpus = TextStreams(stream(encode_text(vocab, POEM * 20)), streams=2, bptt=30)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    state, loss = None, float("inf")
    for step in range(steps):
        i = step % len(corpus)
        x, y = corpus.batch(np.array([i]))
        logits, state = model(x, detach(state) if i else None)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return LanguageModel(model, vocab, r, torch.device("cpu")), loss.item()


@pytest.fixture(scope="module")
def poem_model(poem_vocab):
    lm, loss = overfit_poem(poem_vocab)
    assert loss < 0.05, loss
    return lm


def test_an_overfit_model_greedily_reproduces_its_text(poem_model):
    assert poem_model.generate("twinkle twinkle", 41) == " little star\nhow i wonder what you are\ntw"
    assert poem_model.generate("how i", 10) == " wonder wh"
    assert poem_model.generate("", 8) == "twinkle "  # from the start of a line
    s = poem_model.score([POEM])[0]
    assert s["units"] == s["characters"] == len(POEM) and s["loss"] < 0.2


def test_sampling_is_seeded_and_top_k_1_is_greedy(poem_model):
    lm = poem_model
    a = lm.generate("how", 30, sampling="topp:0.95", temperature=3.0, seed=7, num_samples=3)
    assert a == lm.generate("how", 30, sampling="topp:0.95", temperature=3.0, seed=7, num_samples=3)
    assert len(set(a)) > 1  # at temperature 3 the samples differ from each other
    assert lm.generate("how", 30, sampling="topp:0.95", temperature=3.0, seed=7) == a[0]  # sample 0 alone
    assert lm.generate("how", 30, sampling="topp:0.95", temperature=3.0, seed=8, num_samples=3) != a
    greedy = lm.generate("how", 30)
    assert lm.generate("how", 30, sampling="topk:1", temperature=3.0, seed=3) == greedy
    assert lm.generate("how", 30, sampling="topk:1", seed=4, num_samples=2) == [greedy, greedy]


def test_generation_never_emits_pad_or_bos(fill_weights):
    model = fill_weights(build_language_model(recipe("gru").model, 10), 0.4).eval()
    with torch.no_grad():
        model.output.bias[:3] = 100.0  # PAD, UNK and BOS the most probable by far
    from seq2seq.sampling import Sampling
    for sampling in (None, Sampling(top_k=2, seed=1)):
        units = generate_units(model, [EOS], 12, sampling, 2, torch.device("cpu"))
        assert all(u not in (PAD, 2) for row in units for u in row) and UNK in units[0]
