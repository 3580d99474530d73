"""Text classification end to end on tiny generated data, through the commands' main functions
(as their entry points call them): seq2seq-train -> seq2seq-classify -> seq2seq-evaluate; CSV data;
the bad inputs (one line, exit 2, no traceback); exact resume."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from seq2seq.checkpoint import list_checkpoints
from seq2seq.config import recipe_from_dict
from seq2seq.logs import JsonLines
from seq2seq.tasks import train
from seq2seq.tasks.classification import Classifier

WORDS = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"], "neu": ["table", "chair", "door"]}
FILLER = ["the", "a", "this", "is", "was", "very"]


def examples(n: int, seed: int) -> list[tuple[str, str]]:
    """(text, class): a few filler words and one word of the class, anywhere."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(sorted(WORDS))
        words = [rng.choice(FILLER) for _ in range(rng.randint(1, 4))]
        words.insert(rng.randint(0, len(words)), rng.choice(WORDS[label]))
        out.append((" ".join(words), label))
    return out


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", 48, 0), ("valid", 12, 1)):
        pairs = examples(n, seed)
        (folder / f"{prefix}.txt").write_text("".join(t + "\n" for t, _ in pairs), encoding="utf-8")
        (folder / f"{prefix}.label").write_text("".join(c + "\n" for _, c in pairs), encoding="utf-8")
    return folder


def tiny(data_dir: Path, **training) -> dict:
    return {"name": "tiny_classifier", "task": "classification",
            "data": {"dir": str(data_dir), "max_length": 12},
            "vocab": {"model_type": "word", "size": 19},  # 4 special + 15 words
            "model": {"embedding_size": 8, "embedding_dropout": 0.1,
                      "encoder": {"cell": "gru", "hidden_size": 8, "bidirectional": True}},
            "classification": {"pooling": "attention", "dropout": 0.2},
            "training": {"batch_type": "sentences", "batch_size": 16, "epochs": 2, "device": "cpu", "threads": 1,
                         "lr": 0.02, **training}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """seq2seq-train's main on tiny.yaml, through cli.common.run as its entry point calls it."""
    import contextlib

    from seq2seq.cli.common import run
    from seq2seq.cli.train import main
    root = tmp_path_factory.mktemp("classification")
    write_data(root / "data")
    (root / "tiny.yaml").write_text("# seq2seq-train tiny.yaml --model-dir model\n" +
                                    yaml.safe_dump(tiny(root / "data")), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        run(main, [str(root / "tiny.yaml"), "--model-dir", str(root / "model")])
    assert info.value.code == 0, err.getvalue()
    assert "Traceback" not in err.getvalue() and "warning" not in err.getvalue()
    assert "done: 6 steps" in out.getvalue() and "best validation accuracy" in out.getvalue()
    return root / "model"


def test_train_writes_a_classifier_model_directory(trained):
    for name in ("meta.json", "recipe.json", "labels.json", "best.safetensors", "spm.model", "train_log.jsonl",
                 "steps.jsonl", "curves.png"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "meta.json").read_text())
    assert meta["task"] == "classification" and meta["tgt_vocab_size"] == 3
    assert json.loads((trained / "labels.json").read_text()) == {"labels": ["neg", "neu", "pos"]}
    log = JsonLines(trained / "train_log.jsonl").read()
    assert [r["step"] for r in log] == [3, 6] and {"accuracy", "macro_f1", "valid_loss"} <= set(log[0])


def test_classify_then_evaluate(trained, in_process, tmp_path):
    code, out, err = in_process("classify", trained, stdin="the good door\n\nawful\n")
    assert code == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == "" and {lines[0], lines[2]} <= {"neg", "neu", "pos"}
    code, out, err = in_process("classify", trained, "--probabilities", stdin="the good door\n\n")
    first, blank = map(json.loads, out.splitlines())
    assert first["label"] == lines[0] and list(first["probabilities"])[0] == lines[0]
    assert sorted(first["probabilities"]) == ["neg", "neu", "pos"]
    assert sum(first["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert blank == {"label": "", "probabilities": {}}
    # evaluate on the validation files: the best weights' validation accuracy, again
    data = trained.parent / "data"
    code, out, err = in_process("evaluate", trained, "--src", data / "valid.txt", "--ref", data / "valid.label",
                                "--json", "--output", tmp_path / "predicted")
    assert code == 0, err
    result = json.loads(out)
    best = max(r["accuracy"] for r in JsonLines(trained / "train_log.jsonl").read())
    assert result["accuracy"] == pytest.approx(best, abs=0.01) and result["texts"] == 12
    predicted = (tmp_path / "predicted").read_text().splitlines()
    texts = (data / "valid.txt").read_text().splitlines()
    assert predicted == Classifier.load(trained).classify(texts)


def test_bad_inputs_are_one_line(trained, tmp_path, in_process, assert_user_error):
    data = trained.parent / "data"
    (tmp_path / "v.label").write_text("neg\nangry\n" + "neg\n" * 10, encoding="utf-8")
    code, _, err = in_process("evaluate", trained, "--src", data / "valid.txt", "--ref", tmp_path / "v.label")
    assert_user_error(code, err, f"{tmp_path / 'v.label'}:2: class 'angry' is not one the model knows")
    code, _, err = in_process("evaluate", trained, "--src", data / "valid.txt", "--ref", data / "valid.label",
                              "--beam-size", "2")
    assert_user_error(code, err, "--beam-size")
    code, _, err = in_process("classify", tmp_path / "nowhere")
    assert_user_error(code, err, "nowhere")

    bad = tmp_path / "bad"
    write_data(bad)
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(tiny(bad)), encoding="utf-8")
    (bad / "train.label").write_text("neg\n" * 47, encoding="utf-8")
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'train.label'}:48: missing")
    write_data(bad)
    lines = (bad / "valid.txt").read_text().splitlines()
    (bad / "valid.txt").write_text("\n".join(lines[:4] + [""] + lines[5:]) + "\n", encoding="utf-8")
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'valid.txt'}:5: empty text")
    write_data(bad)
    (bad / "valid.label").write_text("neg\n" * 11 + "angry\n", encoding="utf-8")
    code, _, err = in_process("train", recipe, "--model-dir", tmp_path / "m")
    assert_user_error(code, err, f"{bad / 'valid.label'}:12: class 'angry'")
    assert not (tmp_path / "m").exists()  # nothing written


def test_csv_data_trains_and_classifies(tmp_path):
    data = tmp_path / "csv"
    data.mkdir()
    for prefix, n, seed in (("train", 48, 0), ("valid", 12, 1)):
        rows = [{"id": i, "review": t, "sentiment": c} for i, (t, c) in enumerate(examples(n, seed))]
        with open(data / f"{prefix}.csv", "w", encoding="utf-8", newline="") as f:
            import csv
            writer = csv.DictWriter(f, ["id", "sentiment", "review"])
            writer.writeheader()
            writer.writerows(rows)
    raw = tiny(data, epochs=1)
    raw["classification"].update(format="csv", text_column="review", label_column="sentiment")
    trainer = train(recipe_from_dict(raw), tmp_path / "m")
    assert trainer.progress.step == 3
    assert set(Classifier.load(tmp_path / "m").classify(["very good", "a chair"])) <= {"neg", "neu", "pos"}


def test_resume_equals_an_uninterrupted_run(tmp_path):
    """Dropout draws from the generators: the resumed run must get them back exactly."""
    data = write_data(tmp_path / "data")
    train(recipe_from_dict(tiny(data, epochs=3, batch_size=8)), tmp_path / "straight")
    train(recipe_from_dict(tiny(data, epochs=3, batch_size=8, max_steps=8)), tmp_path / "split")  # mid-epoch 2
    trainer = train(recipe_from_dict(tiny(data, epochs=3, batch_size=8)), tmp_path / "split", resume=True)
    assert trainer.progress.step == 18  # 6 batches per epoch

    def losses(model_dir):
        return [(r["step"], r["loss"]) for r in JsonLines(model_dir / "steps.jsonl").read()]

    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    a = load_file(str(list_checkpoints(tmp_path / "straight")[0] / "weights.safetensors"))
    b = load_file(str(list_checkpoints(tmp_path / "split")[0] / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
