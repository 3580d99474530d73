"""Copying (pointer-generator): the extended vocabulary, the output mixture, and a synthetic copy
task whose test tokens are unknown to the vocabulary: with copying the model reproduces them,
without it it cannot."""

from __future__ import annotations

import random

import pytest
import torch

from seq2seq.batch import collate
from seq2seq.config import DataConfig
from seq2seq.loss import sequence_nll
from seq2seq.search import beam_search, greedy_search, max_lengths
from seq2seq.tasks.translation.data import load_corpus
from seq2seq.tasks.translation.extended import decode_extended, extend_sources, extend_targets
from seq2seq.vocab import UNK

# ---------------------------------------------------------------- extended vocabulary


def test_unknown_pieces_get_their_own_ids_and_decode_to_source_text(char_vocab):
    V = len(char_vocab)
    [ext] = extend_sources(char_vocab, ["abXcY Xh"])  # X, Y: not letters of the vocabulary
    assert ext.oovs == ["X", "Y"]
    assert ext.ids.count(V) == 2 and ext.ids.count(V + 1) == 1  # one id per distinct piece
    assert UNK not in ext.ids and all(i < V for i in ext.ids if i not in (V, V + 1))
    assert char_vocab.encode(["abXcY Xh"])[0] == [UNK if i >= V else i for i in ext.ids]
    # decoding maps the extended ids back: the source round-trips exactly
    assert decode_extended(char_vocab, [ext.ids], [ext.oovs]) == ["abXcY Xh"]
    # a target's unknown piece gets its source's id; one absent from the source stays UNK
    [tgt] = extend_targets(char_vocab, ["YaZ"], [ext.oovs])
    assert tgt[char_vocab.sp.encode("YaZ", out_type=str).index("Y")] == V + 1
    assert tgt.count(UNK) == 1 and max(tgt) == V + 1


def test_decode_without_extended_ids_equals_plain_decode(char_vocab):
    ids = char_vocab.encode(["abc def", "h"])
    assert decode_extended(char_vocab, ids, [[], []]) == char_vocab.decode(ids)
    # an extended id a sentence does not have (another sentence's) reads as UNK, not a crash
    V = len(char_vocab)
    assert decode_extended(char_vocab, [ids[1] + [V + 3]], [["Q"]])[0].startswith("h")


@pytest.fixture(scope="module")
def word_vocab(tmp_path_factory):
    """A word-level sentencepiece model: an unknown word is one UNK piece, '▁Zürich'."""
    from seq2seq.config import VocabConfig
    from seq2seq.vocab import train_sentencepiece

    folder = tmp_path_factory.mktemp("word_vocab")
    (folder / "text.txt").write_text("the city is big\na town is small\nthe town is old\n" * 20,
                                     encoding="utf-8")
    return train_sentencepiece([folder / "text.txt"], folder / "spm", VocabConfig(model_type="word", size=30))


@pytest.mark.parametrize("line", ["Zürich is big", "the town is Zürich", "the Zürich Zürich is Bern"])
def test_copied_words_come_out_as_the_source_wrote_them(word_vocab, line):
    """No space before a copied word that starts the output (before: ' Zürich is big')."""
    [ext] = extend_sources(word_vocab, [line])
    assert ext.oovs and all(i != UNK for i in ext.ids)
    assert decode_extended(word_vocab, [ext.ids], [ext.oovs]) == [line]
    [tgt] = extend_targets(word_vocab, [line], [ext.oovs])
    assert decode_extended(word_vocab, [tgt], [ext.oovs]) == [line]


def test_unknown_output_pieces_are_written_as_one_unk_token(word_vocab, char_vocab):
    """A generated UNK and an extended id a sentence does not have both come out as '⁇'
    (sentencepiece's surface for UNK) as a word of its own, with copy or without; before, the
    first was dropped and the second written ' ⁇ '."""
    V = len(word_vocab)
    is_, big = word_vocab.encode(["is big"])[0]
    for seq in ([UNK, is_, big], [is_, UNK, big], [is_, big, UNK]):
        want = " ".join(["is", "big"][:seq.index(UNK)] + ["\u2047"] + ["is", "big"][seq.index(UNK):])
        assert word_vocab.decode([seq]) == [want]
        assert decode_extended(word_vocab, [seq], None) == [want]
        assert decode_extended(word_vocab, [seq], [[]]) == [want]
        unresolved = [V + 2 if i == UNK else i for i in seq]
        assert decode_extended(word_vocab, [unresolved], [["Zürich"]]) == [want]
    [ext] = extend_sources(word_vocab, ["Zürich is big"])
    assert decode_extended(word_vocab, [ext.ids + [UNK, V + 5]], [ext.oovs]) == ["Zürich is big \u2047 \u2047"]
    # characters: the unknown piece stands apart from the letters around it
    h = char_vocab.encode(["h"])[0]
    assert char_vocab.decode([h + [UNK] + h[1:]]) == ["h \u2047 h"]
    assert decode_extended(char_vocab, [h + [len(char_vocab) + 3] + h[1:]], [["Q"]]) == ["h \u2047 h"]


# ---------------------------------------------------------------- the output mixture

SRC = [[4, 12, 5, 13], [6, 12]]  # ids >= 12 are extended (V = 12)
TGT = [[12, 4], [6, 12, 6]]


def test_copy_model_outputs_a_distribution_over_the_extended_vocabulary(make_model):
    model = make_model(copy=True)
    batch = collate(SRC, TGT)
    log_probs, weights = model(batch)
    assert log_probs.shape == (2, 4, 12 + 2)  # two extended ids in this batch
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 4))
    # an extended id gets exactly the copy mass on the positions holding it: (1 - p_gen) * a
    p_copy = log_probs.exp()[:, :, 13] / weights[:, :, 3].clamp_min(1e-30)
    assert torch.all(p_copy[0] > 0) and torch.all(p_copy[0] < 1)
    assert torch.all(log_probs[1, :, 13] < -20)  # sentence 1 has no id 13: (almost) impossible
    # log_softmax leaves log-probabilities alone, so the NLL loss takes them as logits
    nll = sequence_nll(log_probs, batch.tgt_out)
    by_hand = -sum(log_probs[b, t, batch.tgt_out[b, t]] for b in range(2) for t in range(4)
                   if batch.tgt_out[b, t] != 0)
    assert nll.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_copy_teacher_forced_equals_step_loop_and_feeds_back_unk(make_model):
    model = make_model(copy=True, attention={"coverage": True})
    batch = collate(SRC, TGT)
    log_probs, weights = model(batch)
    memory, state = model.encode(batch.src, batch.src_lengths)
    assert memory.extra == 2
    for t in range(batch.tgt_in.size(1)):
        step, w, state = model.step(batch.tgt_in[:, t], memory, state)
        torch.testing.assert_close(step, log_probs[:, t], atol=1e-5, rtol=0)
        torch.testing.assert_close(w, weights[:, t], atol=1e-5, rtol=0)
    # an extended id fed back is read as UNK
    memory, state = model.encode(batch.src, batch.src_lengths)
    a, _, _ = model.step(torch.tensor([13, 12]), memory, state)
    b, _, _ = model.step(torch.tensor([UNK, UNK]), memory, state)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("coverage", [False, True])
def test_target_log_probs_are_the_mixtures_at_the_targets_with_its_gradients(make_model, coverage):
    """forward(targets_only=True), the training loss's input without label smoothing, is the whole
    mixture gathered at tgt_out: vocabulary pieces, extended ids (copy only), and the gradient of
    their sum with respect to every parameter (both computed in fp32, as the mixture is)."""
    model = make_model(copy=True, attention={"coverage": coverage})
    batch = collate(SRC, TGT)
    full, weights = model(batch)
    gathered = full.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
    grads_full = torch.autograd.grad(gathered[batch.tgt_out != 0].sum(), list(model.parameters()),
                                     allow_unused=True)
    alone, weights_alone = model(batch, targets_only=True)
    assert alone.shape == batch.tgt_out.shape and alone.dtype == torch.float32
    torch.testing.assert_close(alone, gathered, rtol=0, atol=1e-5)
    torch.testing.assert_close(weights_alone, weights)
    assert (batch.tgt_out >= 12).any()  # the extended ids were among the targets
    grads = torch.autograd.grad(alone[batch.tgt_out != 0].sum(), list(model.parameters()), allow_unused=True)
    for a, b in zip(grads_full, grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_targets_only_needs_copy(make_model):
    with pytest.raises(ValueError, match="copy"):
        make_model()(collate([[4, 5]], [[6, 7]]), targets_only=True)


def test_without_copy_the_model_is_unchanged(make_model):
    plain = make_model()
    assert plain.copy is None
    assert not any("copy" in name or "coverage" in name for name, _ in plain.named_parameters())


# ---------------------------------------------------------------- the synthetic copy task

V = 12  # pad, unk, bos, eos, then words 4 .. 11; ids >= V stand for unknown words


def copy_task(n: int, seed: int, unknown_share: float) -> list[list[int]]:
    """Sequences of 3-5 tokens; each is an unknown word with probability `unknown_share`
    (extended ids in order of first appearance, as extend_sources gives them)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seq, extra = [], 0
        for _ in range(rng.randint(3, 5)):
            if rng.random() < unknown_share:
                seq.append(V + extra)
                extra += 1
            else:
                seq.append(rng.randint(4, V - 1))
        out.append(seq)
    return out


def train_copy_task(make_model, overfit, copy: bool, data: list[list[int]], steps: int = 150):
    """Learn target = source; without copying, unknown words are UNK on both sides."""
    torch.manual_seed(0)
    model = make_model(vocab_size=V, deterministic=False, copy=copy, embedding_size=16,
                       encoder={"hidden_size": 24}, decoder={"hidden_size": 48})
    if not copy:
        data = [[UNK if i >= V else i for i in s] for s in data]
    overfit(model, collate(data, data), steps, lr=0.01)
    return model


def test_copy_reproduces_unknown_words_and_no_copy_cannot(make_model, overfit):
    train = copy_task(96, seed=0, unknown_share=0.5)
    test = [s for s in copy_task(40, seed=1, unknown_share=0.6) if max(s) >= V]
    assert len(test) >= 30 and all(max(s) >= V for s in test)  # every test sentence needs copying
    batch = collate(test)
    limit = max_lengths(batch.src_lengths, 1.0, 2)

    copying = train_copy_task(make_model, overfit, copy=True, data=train)
    greedy = [h[0].tokens for h in greedy_search(copying, batch.src, batch.src_lengths, limit)]
    assert sum(g == s for g, s in zip(greedy, test)) >= 0.9 * len(test)
    beam = [h[0].tokens for h in beam_search(copying, batch.src, batch.src_lengths, limit, beam_size=3)]
    assert sum(b == s for b, s in zip(beam, test)) >= 0.9 * len(test)

    plain = train_copy_task(make_model, overfit, copy=False, data=train)
    unk_batch = collate([[UNK if i >= V else i for i in s] for s in test])
    out = [h[0].tokens for h in greedy_search(plain, unk_batch.src, unk_batch.src_lengths, limit)]
    assert all(max(o, default=0) < V for o in out)  # its outputs live in the vocabulary alone
    assert not any(o == s for o, s in zip(out, test))
    # it did learn the task: with unknown words read as UNK it mostly gets the UNK version right
    unk_test = [[UNK if i >= V else i for i in s] for s in test]
    assert sum(o == s for o, s in zip(out, unk_test)) >= 0.25 * len(test)



# ---------------------------------------------------------------- copy and truncation


def cut_pairs(tmp_path):
    """'X' is unknown: in pair 0 it comes after the 3-piece source cut (▁ a b | ▁ X c) and is
    in the target; pair 1 keeps its X (an extended id) on both sides."""
    (tmp_path / "c.src").write_text("ab Xc\nXa\n", encoding="utf-8")
    (tmp_path / "c.tgt").write_text("aX\nXa\n", encoding="utf-8")
    return tmp_path / "c.src", tmp_path / "c.tgt"


def nll_alone_and_beside(model, src, tgt):
    """The loss of sentence 0 alone, and in a batch with sentence 1."""
    alone = collate(src[:1], tgt[:1])
    both = collate(src, tgt)
    return (sequence_nll(model(alone)[0], alone.tgt_out),
            sequence_nll(model(both)[0][:1], both.tgt_out[:1]))


def test_extended_ids_come_from_the_cut_source(tmp_path, char_vocab, make_model):
    """A target piece whose only source occurrence was cut away is UNK: before, it kept an
    extended id the cut source no longer had (IndexError in the loss, or log(1e-12) per token
    when a batchmate had that id)."""
    V = len(char_vocab)
    src_file, tgt_file = cut_pairs(tmp_path)
    corpus = load_corpus(src_file, tgt_file, char_vocab, char_vocab,
                         DataConfig(max_length=8, max_source_length=3), copy=True)
    src, tgt = corpus.pairs([0, 1])
    assert src == [char_vocab.encode(["ab"])[0], [src[1][0], V, src[1][2]]]
    assert tgt[0] == char_vocab.encode(["aX"])[0] and UNK in tgt[0]  # X: UNK, not V
    assert tgt[1][1] == V  # pair 1 still copies its X
    model = make_model(vocab_size=V, copy=True)
    alone, beside = nll_alone_and_beside(model, src, tgt)
    assert torch.isfinite(alone) and alone.item() == pytest.approx(beside.item(), rel=1e-5)


def test_translator_input_ids_come_from_the_cut_source(tmp_path, char_vocab, make_model, make_tiny_recipe):
    """The cut source's pieces are all its oovs hold: an id past them reads as UNK ('⁇')."""
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks.translation.translator import Translator

    recipe = make_tiny_recipe(tmp_path)
    recipe["data"]["max_source_length"] = 3
    recipe["model"]["copy"] = True
    model = make_model(vocab_size=len(char_vocab), copy=True)
    translator = Translator(model, char_vocab, char_vocab, recipe_from_dict(recipe), torch.device("cpu"))
    src, oovs = translator.encode(["ab Xc", "Xa"])
    assert src[0] == char_vocab.encode(["ab"])[0] and oovs == [[], ["X"]]


def test_validation_ids_come_from_the_cut_source(tmp_path, char_vocab, make_tiny_recipe):
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks.translation.training import _validation

    V = len(char_vocab)
    src_file, tgt_file = cut_pairs(tmp_path)
    recipe = make_tiny_recipe(tmp_path)
    recipe["data"]["max_source_length"] = 3
    recipe["model"]["copy"] = True
    valid = _validation(recipe_from_dict(recipe), src_file, tgt_file, char_vocab, char_vocab)
    assert valid.src[0] == char_vocab.encode(["ab"])[0] and valid.oovs[0] == []
    assert valid.tgt[0] == char_vocab.encode(["aX"])[0]
    assert valid.src[1][1] == V and valid.tgt[1][1] == V and valid.oovs[1] == ["X"]
