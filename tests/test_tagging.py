"""Sequence tagging's parts (seq2seq/tasks/tagging/): the CRF against enumerating every tag
sequence, the scheme conversions on golden cases, CoNLL reading and its errors, the scores, a
sentence's scores alone and in a padded batch, and overfitting a few sentences to F1 100."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks.tagging.crf import LinearChainCRF
from seq2seq.tasks.tagging.data import Sentences, TaggedSet, check_known, read_conll
from seq2seq.tasks.tagging.metric import per_type, scores
from seq2seq.tasks.tagging.model import build_tagger, predict
from seq2seq.tasks.tagging.schemes import convert, iob2_to_iobes, iobes_to_iob2, malformed, repairs, to_iob2
from seq2seq.tasks.tagging.vocab import Vocabularies

# ---------------------------------------------------------------- the CRF


def crf_and_inputs(num_tags=3, lengths=(4, 2, 1)):
    """A CRF with transitions, start and end from sin (no RNG), emissions (B, T, K) whose padded
    positions hold large values (they must not count), and the mask."""
    crf = LinearChainCRF(num_tags)
    with torch.no_grad():
        crf.transitions.copy_(torch.sin(torch.arange(num_tags * num_tags, dtype=torch.float) * 1.3).view(num_tags, -1))
        crf.start.copy_(torch.cos(torch.arange(num_tags, dtype=torch.float)))
        crf.end.copy_(torch.sin(torch.arange(num_tags, dtype=torch.float) + 0.5))
    batch, length = len(lengths), max(lengths)
    emissions = 2 * torch.sin(torch.arange(batch * length * num_tags, dtype=torch.float) * 0.77).view(batch, length, -1)
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    emissions = emissions.masked_fill(~mask.unsqueeze(-1), 50.0)
    return crf, emissions, mask


def brute_force(crf, emissions, n):
    """Every tag sequence of a sentence of n tokens with its score s(y), by the formula."""
    out = []
    emissions = emissions.detach()
    for tags in itertools.product(range(crf.num_tags), repeat=n):
        s = crf.start[tags[0]] + crf.end[tags[-1]] + sum(emissions[t, tags[t]] for t in range(n))
        s = s + sum(crf.transitions[tags[t - 1], tags[t]] for t in range(1, n))
        out.append((list(tags), float(s.detach())))
    return out


@torch.no_grad()
def test_crf_log_partition_and_viterbi_equal_enumeration():
    crf, emissions, mask = crf_and_inputs()
    log_z = crf.log_partition(emissions, mask)
    best, best_score = crf.decode(emissions, mask)
    for b, n in enumerate(mask.sum(1).tolist()):
        every = brute_force(crf, emissions[b], n)
        assert float(log_z[b]) == pytest.approx(float(torch.tensor([s for _, s in every]).logsumexp(0)), abs=1e-5)
        tags, score = max(every, key=lambda x: x[1])
        assert best[b, :n].tolist() == tags and float(best_score[b]) == pytest.approx(score, abs=1e-5)
        assert best[b, n:].tolist() == [0] * (mask.size(1) - n)
        # the score of one given sequence, and -log p of it
        some = torch.tensor([every[5 % len(every)][0] + [0] * (mask.size(1) - n)])
        s = crf.sequence_score(emissions[b:b + 1], some, mask[b:b + 1])
        assert float(s) == pytest.approx(every[5 % len(every)][1], abs=1e-5)
        nll = crf.nll(emissions[b:b + 1], some, mask[b:b + 1])
        assert float(nll) == pytest.approx(float(log_z[b]) - every[5 % len(every)][1], abs=1e-5)


def test_crf_probabilities_sum_to_one_and_gradients_flow():
    crf, emissions, mask = crf_and_inputs(num_tags=2, lengths=(3,))
    emissions.requires_grad_(True)
    total = sum(torch.exp(-crf.nll(emissions, torch.tensor([list(t)]), mask))
                for t in itertools.product(range(2), repeat=3))
    assert float(total.detach()) == pytest.approx(1.0, abs=1e-5)
    crf.nll(emissions, torch.tensor([[0, 1, 1]]), mask).sum().backward()
    assert crf.transitions.grad.abs().sum() > 0 and emissions.grad.abs().sum() > 0


# ---------------------------------------------------------------- tag schemes


def test_iob1_to_iob2_golden():
    # CoNLL-2003's first sentence, and the cases IOB1 writes: B- only between adjacent spans of one type
    assert to_iob2(["I-ORG", "O", "I-MISC", "O", "O", "O", "I-MISC", "O", "O"]) == \
        ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert to_iob2(["I-PER", "I-PER", "B-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == \
        ["B-PER", "I-PER", "B-PER", "I-PER", "B-LOC", "O", "B-ORG"]
    assert to_iob2(["B-PER", "I-PER", "O", "B-LOC"]) == ["B-PER", "I-PER", "O", "B-LOC"]  # IOB2 stays
    assert to_iob2([]) == [] and to_iob2(["O"]) == ["O"]
    assert repairs(["I-PER", "I-PER", "B-PER", "I-LOC"]) == 2 and repairs(["B-PER", "I-PER", "O"]) == 0


def test_iob2_and_iobes_golden_and_round_trip():
    iob2 = ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG"]
    iobes = ["B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC", "S-ORG"]
    assert iob2_to_iobes(iob2) == iobes and iobes_to_iob2(iobes) == iob2
    assert convert(["I-PER", "I-PER", "O", "I-LOC"], "iob1", "iobes") == ["B-PER", "E-PER", "O", "S-LOC"]
    # a model's tags out of order: read as conlleval reads them
    assert iobes_to_iob2(["O", "I-PER", "E-PER", "E-LOC", "B-ORG"]) == ["O", "B-PER", "I-PER", "B-LOC", "B-ORG"]


def test_malformed_tags():
    assert malformed("O", "iob1") is None and malformed("B-PER", "iob2") is None
    assert "prefix 'S'" in malformed("S-PER", "iob1") and malformed("S-PER", "iobes") is None
    assert "neither O nor" in malformed("PER", "iob1") and "neither O nor" in malformed("B-", "iob1")


# ---------------------------------------------------------------- CoNLL files


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC


Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- O O
BRUSSELS NNP I-NP I-LOC"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_conll_sentences_lines_and_tags(tmp_path):
    s = read_conll(write(tmp_path / "a.conll", CONLL), -1, "iob1")
    assert s.words == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert s.tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert s.lines == [[3, 4, 5], [8, 9], [11]]
    words_only = read_conll(tmp_path / "a.conll", None)
    assert words_only.words == s.words and words_only.tags is None
    iob2 = read_conll(write(tmp_path / "b.conll", "a X I-PER\nb X I-PER\n\nc X B-LOC\n"), -1, "iob2")
    assert iob2.tags == [["B-PER", "I-PER"], ["B-LOC"]] and iob2.repaired == 1
    assert "1 spans opened by I-X" in iob2.report("iob2")


@pytest.mark.parametrize("text, column, message", [
    ("a X O\nb O\n", -1, "b.conll:2: 2 columns, but the file's first token line (%s:1) has 3"),
    ("\n\na X O\n\nb X Y O\n", -1, "b.conll:5: 4 columns, but the file's first token line (%s:3) has 3"),
    ("a X O\n", 3, "b.conll:1: tagging.tag_column is 3, but the line has 3 columns"),
    ("a X O\n", -3, "b.conll:1: tagging.tag_column is -3"),
    ("a X O\nb X S-PER\n", -1, "b.conll:2: tag 'S-PER': prefix 'S' is not one of IOB1's"),
    ("a X O\nb X PER\n", -1, "b.conll:2: tag 'PER' is neither O nor PREFIX-TYPE"),
    ("-DOCSTART- -X- O O\n\n", -1, "b.conll: no sentences"),
])
def test_read_conll_errors_name_file_and_line(tmp_path, text, column, message):
    path = write(tmp_path / "b.conll", text)
    with pytest.raises(UserError) as info:
        read_conll(path, column, "iob1")
    assert (message % path if "%s" in message else message) in str(info.value)
    assert "\n" not in str(info.value)


def test_non_utf8_and_unknown_entity_types_name_the_line(tmp_path):
    path = tmp_path / "c.conll"
    path.write_bytes(b"a X O\n\nb X \xff\n")
    with pytest.raises(UserError, match=r"c.conll:3: bytes are not UTF-8"):
        read_conll(path, -1)
    vocab = Vocabularies.build([["a"]], [["B-PER"]], 1, False)
    gold = read_conll(write(tmp_path / "d.conll", "a X I-PER\n\nb X O\nc X I-DATE\n"), -1)
    with pytest.raises(UserError, match=r"d.conll:4: tag 'B-DATE' is of an entity type the model does not know"):
        check_known(gold, vocab)


def test_recipe_settings_of_tagging():
    with pytest.raises(UserError, match="tagging.tag_column: 0 is the column of the words"):
        recipe_from_dict({"task": "tagging", "tagging": {"tag_column": 0}})
    notes = []
    recipe_from_dict({"task": "tagging", "vocab": {"size": 100}, "data": {"max_length": 5},
                      "tagging": {"char_encoder": False, "char_hidden_size": 9}}, warn=notes.append)
    assert len(notes) == 3 and all("is not used" in n for n in notes)
    notes.clear()
    recipe_from_dict({"tagging": {"crf": False}}, warn=notes.append)
    assert notes == ["tagging.crf: False is not used: it applies to task 'tagging' only, not 'translation'"]


# ---------------------------------------------------------------- scores


def test_scores_count_entities_as_conlleval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC"]]  # 1 of 3 right, 2 predicted
    s = scores(predicted, gold)
    assert s["precision"] == pytest.approx(50) and s["recall"] == pytest.approx(100 / 3)
    assert s["f1"] == pytest.approx(40) and s["token_accuracy"] == pytest.approx(400 / 6)
    assert scores([["O", "I-PER"]], [["O", "B-PER"]])["f1"] == 100  # I-X after O opens a span
    assert scores([["O"]], [["O"]])["f1"] == 0  # no entities: 0, without warnings
    assert per_type(predicted, gold)["PER"]["f1"] == 100 and per_type(predicted, gold)["LOC"]["support"] == 1


# ---------------------------------------------------------------- the model


SENTENCES = [["John", "visited", "New", "York"], ["Acme"], ["Mary", "met", "Bob", "in", "Paris", "today"],
             ["the", "UN", "said"]]
TAGS = [["B-PER", "O", "B-LOC", "I-LOC"], ["B-ORG"], ["B-PER", "O", "B-PER", "O", "B-LOC", "O"],
        ["O", "B-ORG", "O"]]


def tiny_tagger(crf: bool, scheme: str = "iob2", **tagging):
    recipe = recipe_from_dict({"task": "tagging", "model": {"embedding_size": 12, "encoder": {
        "cell": "lstm", "hidden_size": 10, "dropout": 0.2, "num_layers": 2}},
        "tagging": {"crf": crf, "scheme": scheme, "char_embedding_size": 6, "char_hidden_size": 5, **tagging}})
    tags = [convert(t, "iob2", scheme) for t in TAGS]
    vocab = Vocabularies.build(SENTENCES[:3], tags, 1, False)  # 'the UN said': unknown words
    torch.manual_seed(0)
    model = build_tagger(recipe.model, recipe.tagging, len(vocab.words), len(vocab.chars), len(vocab.tags))
    data = TaggedSet.build(Sentences(Path("x"), SENTENCES, TAGS, []), vocab, scheme)
    return model, vocab, data


@pytest.mark.parametrize("crf", [True, False])
@torch.no_grad()
def test_a_sentence_alone_and_in_a_padded_batch_agree(crf):
    model, vocab, data = tiny_tagger(crf)
    model.eval()
    batch = data.batch(range(4))
    scores_all = model(batch)
    tags_all, losses = model.decode(scores_all, batch), []
    for i in range(4):
        alone = data.batch([i])
        scores_one = model(alone)
        n = len(SENTENCES[i])
        assert torch.allclose(scores_all[i, :n], scores_one[0], atol=1e-6)
        assert model.decode(scores_one, alone) == [tags_all[i]]
        losses.append(float(model.loss(scores_one, alone)))
        if crf:  # each sentence's -log p
            assert float(model.crf.nll(scores_all, batch.tags, batch.mask)[i]) == pytest.approx(losses[i], abs=1e-5)
    assert float(model.loss(scores_all, batch)) == pytest.approx(sum(losses), abs=1e-4)


@pytest.mark.parametrize("crf, scheme", [(True, "iobes"), (False, "iob2")])
def test_overfit_a_few_sentences_to_f1_100(crf, scheme):
    model, vocab, data = tiny_tagger(crf, scheme, word_dropout=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    batch = data.batch(range(4))
    for _ in range(80):
        optimizer.zero_grad()
        model.loss(model(batch), batch).backward()
        optimizer.step()
    ids, loss, tokens = predict(model, data, 3, torch.device("cpu"))
    predicted = [convert([vocab.tags[i] for i in s], scheme, "iob2") for s in ids]
    assert tokens == 14 and loss / tokens < 0.1
    assert predicted == TAGS and scores(predicted, TAGS)["f1"] == 100
