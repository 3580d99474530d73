"""Text classification, in process: the poolings (shapes, padding), overfitting a batch, the scores
by hand, the data readers' errors and the recipe's section (seq2seq/tasks/classification/)."""

from __future__ import annotations

import pytest
import torch

from seq2seq.batch import collate
from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks.classification.data import Examples, label_ids, read_csv, read_labelled
from seq2seq.tasks.classification.metric import accuracy, macro_f1, scores
from seq2seq.tasks.classification.model import POOLINGS, AttentionPooling, build_classifier, class_logits

TEXTS = [[5, 6, 7, 8, 9], [9, 4], [7, 7, 5], [4], [8, 5, 6, 4, 4, 9, 7]]  # piece ids, lengths 1-7


def classifier(pooling: str, cell: str = "gru", bidirectional: bool = True, classes: int = 3, fill=None):
    raw = {"task": "classification", "classification": {"pooling": pooling, "dropout": 0.1},
           "model": {"embedding_size": 6, "embedding_dropout": 0.1,
                     "encoder": {"cell": cell, "hidden_size": 5, "num_layers": 2, "bidirectional": bidirectional,
                                 "dropout": 0.1}}}
    recipe = recipe_from_dict(raw)
    model = build_classifier(recipe.model, recipe.classification, 10, classes)
    return (fill(model) if fill else model).eval()


def pool(pooling: str, size: int = 3):
    return AttentionPooling(size, 4) if pooling == "attention" else POOLINGS[pooling]()


# ---------------------------------------------------------------- poolings


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
def test_a_pooling_reads_only_the_texts_own_positions(pooling):
    """Padding filled with large values changes nothing: each row equals its text pooled alone."""
    torch.manual_seed(0)
    module = pool(pooling)
    states = -torch.rand(2, 4, 3)  # (B, S, D), all negative: unmasked zeros or 100s would win a max
    lengths = torch.tensor([4, 2])
    mask = torch.arange(4).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
    final = torch.randn(2, 3)
    states[1, 2:] = 100.0
    out = module(states, final, mask)
    assert out.shape == (2, 3)
    alone = module(states[1:, :2], final[1:], mask[1:, :2])
    torch.testing.assert_close(out[1:], alone, rtol=0, atol=1e-6)
    assert out[1].abs().max() < 2  # no 100 leaked in


def test_the_poolings_by_hand():
    states = torch.tensor([[[1.0, -2.0], [3.0, -4.0], [9.0, 9.0]]])  # (1, 3, 2); the last is padding
    mask = torch.tensor([[True, True, False]])
    final = torch.tensor([[7.0, 8.0]])
    assert POOLINGS["last"]()(states, final, mask).tolist() == [[7.0, 8.0]]
    assert POOLINGS["mean"]()(states, final, mask).tolist() == [[2.0, -3.0]]
    assert POOLINGS["max"]()(states, final, mask).tolist() == [[3.0, -2.0]]
    attention = AttentionPooling(2, 3)
    with torch.no_grad():  # scores v . tanh(W h + b) equal for both positions: the plain mean
        attention.project.weight.zero_(), attention.project.bias.zero_()
    torch.testing.assert_close(attention(states, final, mask), torch.tensor([[2.0, -3.0]]))


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("cell", ["gru", "peephole_lstm"])
def test_a_padded_batch_equals_each_text_alone(pooling, cell, fill_weights):
    model = classifier(pooling, cell, fill=lambda m: fill_weights(m, 0.3))
    batch = collate(TEXTS)
    with torch.no_grad():
        logits = model(batch.src, batch.src_lengths)
        assert logits.shape == (len(TEXTS), 3)
        for i, text in enumerate(TEXTS):
            one = collate([text])
            torch.testing.assert_close(logits[i:i + 1], model(one.src, one.src_lengths), rtol=0, atol=1e-5)
    # class_logits batches by length and puts the rows back in order
    torch.testing.assert_close(class_logits(model, TEXTS, 2, torch.device("cpu")), logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pooling, cell, bidirectional", [("last", "gru", True), ("mean", "lstm", False),
                                                          ("max", "wm_lstm", True), ("attention", "rnn", True)])
def test_overfit_a_batch_to_every_label(pooling, cell, bidirectional):
    """Labels with no pattern in the texts: only memorising them gives 100 %."""
    torch.manual_seed(0)
    model = classifier(pooling, cell, bidirectional, classes=3)
    labels = torch.tensor([2, 0, 1, 1, 0])
    batch = collate(TEXTS)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(batch.src, batch.src_lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert model(batch.src, batch.src_lengths).argmax(-1).tolist() == labels.tolist()


# ---------------------------------------------------------------- scores


def test_accuracy_and_macro_f1_by_hand():
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    # F1 = 2 TP / (predicted + gold): a 2*2/(2+3) = 0.8, b 2*1/(2+2) = 0.5, c 2*1/(2+1) = 2/3
    assert macro_f1(predicted, gold) == pytest.approx(100 * (0.8 + 0.5 + 2 / 3) / 3)
    assert accuracy(predicted, gold) == pytest.approx(100 * 4 / 6)
    # a class predicted but never gold counts with F1 0; one neither names does not count
    assert macro_f1(["a", "z"], ["a", "a"]) == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert scores(["x"], ["x"]) == {"accuracy": 100.0, "macro_f1": 100.0}
    with pytest.raises(ValueError):
        accuracy(["a"], ["a", "b"])


# ---------------------------------------------------------------- data


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def message(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_label_file_of_another_length_names_the_missing_line(tmp_path):
    texts = write(tmp_path / "t.txt", "one\ntwo\nthree\n")
    labels = write(tmp_path / "t.label", "a\nb\n")
    assert message(lambda: read_labelled(texts, labels)).startswith(f"{labels}:3: missing; {texts} has 3 lines")
    more = write(tmp_path / "m.label", "a\nb\nc\nd\n")
    assert message(lambda: read_labelled(texts, more)).startswith(f"{texts}:4: missing")


def test_empty_text_and_empty_class_name_name_their_line(tmp_path):
    texts = write(tmp_path / "t.txt", "one\n  \nthree\n")
    labels = write(tmp_path / "t.label", "a\nb\nc\n")
    assert message(lambda: read_labelled(texts, labels)).startswith(f"{texts}:2: empty text")
    texts = write(tmp_path / "t.txt", "one\ntwo\nthree\n")
    labels = write(tmp_path / "t.label", "a\nb\n \n")
    assert message(lambda: read_labelled(texts, labels)) == f"{labels}:3: empty class name"


def test_an_unknown_class_names_its_line(tmp_path):
    examples = read_labelled(write(tmp_path / "t.txt", "x\ny\n"), write(tmp_path / "t.label", "a\nc\n"))
    text = message(lambda: label_ids(examples, ["a", "b"]))
    assert text.startswith(f"{tmp_path / 't.label'}:2: class 'c' is not one the model knows")
    assert label_ids(Examples(["x"], ["b"], ["f:1"]), ["a", "b"]) == [1]


def test_csv_columns_are_read_by_name(tmp_path):
    path = write(tmp_path / "d.csv", 'id,topic,body\n1,Sports,"won, again"\n2,World,"two\nlines"\n')
    examples = read_csv(path, "body", "topic")
    assert examples.texts == ["won, again", "two lines"] and examples.labels == ["Sports", "World"]
    assert examples.where == [f"{path}:2", f"{path}:4"]  # where each row ends


def test_csv_errors_name_file_line_and_key(tmp_path):
    path = write(tmp_path / "d.csv", "id,topic,body\n1,Sports,won\n")
    text = message(lambda: read_csv(path, "text", "topic"))
    assert text.startswith(f"{path}:1: no column 'text'") and "classification.text_column" in text
    path = write(tmp_path / "d.csv", "topic,body\nSports,won\nWorld\n")
    assert message(lambda: read_csv(path, "body", "topic")) == f"{path}:3: 1 fields, but the header has 2"
    path = write(tmp_path / "d.csv", "topic,body\nSports,\n")
    assert message(lambda: read_csv(path, "body", "topic")).startswith(f"{path}:2: empty text")
    path = tmp_path / "b.csv"
    path.write_bytes(b"topic,body\nSports,caf\xe9\n")
    assert message(lambda: read_csv(path, "body", "topic")).startswith(f"{path}:2: bytes are not UTF-8")


# ---------------------------------------------------------------- the recipe


def test_seq2seq_settings_in_a_classification_recipe_are_warned_and_the_reverse():
    notes: list[str] = []
    recipe_from_dict({"task": "classification", "model": {"decoder": {"hidden_size": 64}},
                      "decoding": {"beam_size": 3, "batch_size": 8}, "training": {"valid_metric": "rouge"},
                      "classification": {"format": "csv", "label_suffix": "y", "attention_size": 4}},
                     warn=notes.append)
    assert [n.split(":")[0] for n in notes] == ["model.decoder.hidden_size", "training.valid_metric",
                                                "decoding.beam_size", "classification.label_suffix",
                                                "classification.attention_size"]
    assert "task 'translation' and 'summarization', not 'classification'" in notes[0]
    notes.clear()
    recipe_from_dict({"classification": {"pooling": "mean"}}, warn=notes.append)
    assert notes == ["classification.pooling: 'mean' is not used: it applies to task 'classification' only, "
                     "not 'translation'"]
    assert "'attention'" in message(lambda: recipe_from_dict({"task": "classification",
                                                               "classification": {"pooling": "attn"}}))
