"""Sequence tagging end to end on tiny generated CoNLL files, through the commands' main functions
(as their entry points call them): seq2seq-train -> seq2seq-tag -> seq2seq-evaluate; the bad
inputs (one line, exit 2, no traceback); exact resume."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from seq2seq.checkpoint import list_checkpoints
from seq2seq.config import recipe_from_dict
from seq2seq.curves import load_run
from seq2seq.logs import JsonLines
from seq2seq.tasks import train
from seq2seq.tasks.tagging import Tagger

NAMES = {"PER": [["John"], ["Mary", "Smith"], ["Ann", "Lee"], ["Bob"]], "LOC": [["Paris"], ["New", "York"], ["Berlin"]],
         "ORG": [["Acme", "Corp"], ["UN"]]}
FILLER = ["the", "met", "in", "visited", "said", "today", "with", "and", "a", "report"]


def sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """(word, IOB1 tag) sentences: filler words and one to three names (maybe side by side)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence = []
        for _ in range(rng.randint(1, 3)):
            sentence += [(rng.choice(FILLER), "O") for _ in range(rng.randint(0, 2))]
            kind = rng.choice(sorted(NAMES))
            name = [(w, f"I-{kind}") for w in rng.choice(NAMES[kind])]
            if sentence and sentence[-1][1] == f"I-{kind}":  # IOB1: B- opens a span right after one of its type
                name[0] = (name[0][0], f"B-{kind}")
            sentence += name
        out.append(sentence)
    return out


def conll(sents) -> str:
    """CoNLL-2003's layout: word, POS, chunk, NER; -DOCSTART- and blank lines."""
    return "-DOCSTART- -X- O O\n\n" + "".join("".join(f"{w} NN I-NP {t}\n" for w, t in s) + "\n" for s in sents)


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.conll").write_text(conll(sentences(48, 0)), encoding="utf-8")
    (folder / "valid.conll").write_text(conll(sentences(12, 1)), encoding="utf-8")
    return folder


def tiny(data_dir: Path, **training) -> dict:
    return {"name": "tiny_tagger", "task": "tagging", "data": {"dir": str(data_dir)},
            "model": {"embedding_size": 16, "embedding_dropout": 0.1,
                      "encoder": {"cell": "lstm", "hidden_size": 16, "dropout": 0.1}},
            "tagging": {"char_embedding_size": 8, "char_hidden_size": 8, "word_dropout": 0.05},
            "training": {"batch_type": "sentences", "batch_size": 8, "epochs": 6, "device": "cpu", "threads": 1,
                         "lr": 0.03, **training}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """seq2seq-train's main on tiny.yaml, through cli.common.run as its entry point calls it."""
    from seq2seq.cli.common import run
    from seq2seq.cli.train import main
    root = tmp_path_factory.mktemp("tagging")
    write_data(root / "data")
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny(root / "data", epochs=10, validate_every=20)), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        run(main, [str(root / "tiny.yaml"), "--model-dir", str(root / "model")])
    assert info.value.code == 0, err.getvalue()
    assert "Traceback" not in err.getvalue() and "warning" not in err.getvalue()
    assert "done: 60 steps" in out.getvalue() and "best validation entity F1 100.00" in out.getvalue()
    return root / "model"


def test_train_writes_a_tagger_model_directory(trained):
    for name in ("meta.json", "recipe.json", "vocab.json", "best.safetensors", "train_log.jsonl", "steps.jsonl",
                 "curves.png"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "meta.json").read_text())
    vocab = json.loads((trained / "vocab.json").read_text())
    assert meta["task"] == "tagging" and meta["tgt_vocab_size"] == 7 and meta["src_vocab_size"] == 2 + 23
    assert vocab["tags"] == ["O", "B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER"]
    assert vocab["words"][:2] == ["<pad>", "<unk>"] and vocab["lowercase"] is False
    log = JsonLines(trained / "train_log.jsonl").read()
    assert [r["step"] for r in log] == [20, 40, 60]
    assert {"f1", "precision", "recall", "token_accuracy", "valid_loss"} <= set(log[0])
    run = load_run(trained)
    assert run.score_name == "entity F1" and [s for s, _ in run.score] == [20, 40, 60]


def test_tag_then_evaluate(trained, in_process, tmp_path):
    code, out, err = in_process("tag", trained, stdin="John visited New York today\n\nthe UN and  Mary Smith\n")
    assert code == 0, err
    first, third = Tagger.load(trained).tag([["John", "visited", "New", "York", "today"],
                                             ["the", "UN", "and", "Mary", "Smith"]])
    assert out == ("John {}\nvisited {}\nNew {}\nYork {}\ntoday {}\n\n\n".format(*first) +
                   "the {}\nUN {}\nand {}\nMary {}\nSmith {}\n\n".format(*third))
    assert first[2:4] == ["B-LOC", "I-LOC"] and third[3:] == ["B-PER", "I-PER"]
    data = trained.parent / "data"
    code, out, err = in_process("tag", trained, data / "valid.conll", "--conll", "--output", tmp_path / "tagged")
    assert code == 0 and out == "", err
    tagger = Tagger.load(trained)
    words = [[w for w, _ in s] for s in sentences(12, 1)]
    expected = "".join("".join(f"{w} {t}\n" for w, t in zip(s, tags)) + "\n"
                       for s, tags in zip(words, tagger.tag(words)))
    assert (tmp_path / "tagged").read_text() == expected
    code, out, err = in_process("evaluate", trained, "--src", data / "valid.conll", "--json", "--output",
                                tmp_path / "predicted")
    assert code == 0, err
    result = json.loads(out)
    best = max(r["f1"] for r in JsonLines(trained / "train_log.jsonl").read())
    assert result["f1"] == pytest.approx(best, abs=0.01) and result["sentences"] == 12
    assert set(result["per_type"]) == {"LOC", "ORG", "PER"}
    assert (tmp_path / "predicted").read_text() == expected
    code, out, err = in_process("evaluate", trained, "--src", data / "valid.conll")
    assert code == 0 and out.startswith("precision 100.00  recall 100.00  F1 100.00"), out
    assert tagger.tag([[], ["Paris"]]) == [[], ["B-LOC"]]


def test_bad_inputs_are_one_line(trained, tmp_path, in_process, assert_user_error):
    data = trained.parent / "data"
    bad_valid = tmp_path / "v.conll"
    bad_valid.write_text("John NN I-NP I-PER\n\nParis NN I-NP I-DATE\n", encoding="utf-8")
    code, _, err = in_process("evaluate", trained, "--src", bad_valid)
    assert_user_error(code, err, f"{bad_valid}:3: tag 'B-DATE' is of an entity type the model does not know")
    code, _, err = in_process("evaluate", trained, "--src", data / "valid.conll", "--ref", data / "valid.conll")
    assert_user_error(code, err, "--ref")
    code, _, err = in_process("tag", tmp_path / "nowhere")
    assert_user_error(code, err, "nowhere")
    code, _, err = in_process("tag", trained, "--conll", stdin="John NN\nParis NN I-NP\n")
    assert_user_error(code, err, "stdin:2: 3 columns, but the file's first token line (stdin:1) has 2")
    code, _, err = in_process("tag", trained, "--batch-size", "0")
    assert_user_error(code, err, "--batch-size")

    bad = write_data(tmp_path / "bad")
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(tiny(bad)), encoding="utf-8")
    lines = (bad / "train.conll").read_text().splitlines()
    second = [i for i, line in enumerate(lines) if len(line.split()) == 4][2]  # the 2nd token line (after -DOCSTART-)
    lines[second] = lines[second] + " extra"
    (bad / "train.conll").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'train.conll'}:{second + 1}: 5 columns, but the file's first token line "
                                 f"({bad / 'train.conll'}:3) has 4")
    write_data(bad)
    (bad / "valid.conll").write_text("John NN I-NP I-PER\nin NN I-NP O\nRome NN I-NP I-CITY\n", encoding="utf-8")
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'valid.conll'}:3: tag 'B-CITY'")
    (bad / "valid.conll").unlink()
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'valid.conll'}: not found")
    assert not (tmp_path / "m").exists()  # nothing written


def test_softmax_tagger_trains_and_overwrite_replaces_it(tmp_path):
    data = write_data(tmp_path / "data")
    raw = tiny(data, epochs=1)
    raw["tagging"].update(crf=False, char_encoder=False, scheme="iobes", lowercase=True, min_count=2)
    del raw["tagging"]["char_embedding_size"], raw["tagging"]["char_hidden_size"]
    trainer = train(recipe_from_dict(raw), tmp_path / "m")
    assert trainer.progress.step == 6
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text())
    assert "S-PER" in vocab["tags"] and "john" in vocab["words"] and "smith" in vocab["words"]
    assert all(w == w.lower() for w in vocab["words"])
    tags = Tagger.load(tmp_path / "m").tag([["Mary", "Smith", "visited", "Paris"]])[0]
    assert len(tags) == 4 and all(t == "O" or t[:2] in ("B-", "I-") for t in tags)  # written in IOB2
    train(recipe_from_dict(tiny(data, epochs=1)), tmp_path / "m", overwrite=True)
    assert "S-PER" not in json.loads((tmp_path / "m" / "vocab.json").read_text())["tags"]


def test_resume_equals_an_uninterrupted_run(tmp_path):
    """Dropout and word dropout draw from the generators: the resumed run must get them back exactly."""
    data = write_data(tmp_path / "data")
    train(recipe_from_dict(tiny(data, epochs=2)), tmp_path / "straight")
    train(recipe_from_dict(tiny(data, epochs=2, max_steps=8)), tmp_path / "split")  # mid-epoch 2
    trainer = train(recipe_from_dict(tiny(data, epochs=2)), tmp_path / "split", resume=True)
    assert trainer.progress.step == 12  # 6 batches per epoch

    def losses(model_dir):
        return [(r["step"], r["loss"]) for r in JsonLines(model_dir / "steps.jsonl").read()]

    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    a = load_file(str(list_checkpoints(tmp_path / "straight")[0] / "weights.safetensors"))
    b = load_file(str(list_checkpoints(tmp_path / "split")[0] / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
