"""Language model end to end on a tiny text, through the commands' main functions (as their entry
points call them): seq2seq-train -> seq2seq-generate -> seq2seq-evaluate; exact resume in both
batchings (the carried state in the checkpoint); the bad inputs (one line, exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from seq2seq.checkpoint import list_checkpoints, load_checkpoint
from seq2seq.config import recipe_from_dict
from seq2seq.curves import _summary, load_run
from seq2seq.logs import JsonLines
from seq2seq.tasks import train
from seq2seq.tasks.language_model import LanguageModel
from seq2seq.tasks.language_model.model import build_language_model

VERSE = "the cat sat on the mat.\nthe dog sat on the log!\n"


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(VERSE * 24, encoding="utf-8")
    (folder / "valid.txt").write_text(VERSE * 2 + "the cat sat on the log.\n", encoding="utf-8")
    return folder


def tiny(data_dir: Path, batching: str = "tbptt", **training) -> dict:
    # training.precision fp32, as evaluate decodes on the CPU: the scores of validation are then evaluate's
    return {"name": "tiny_lm", "task": "language_model", "data": {"dir": str(data_dir)},
            "vocab": {"model_type": "char", "size": 19},  # 4 special + 15 characters
            "model": {"embedding_size": 8, "embedding_dropout": 0.1,
                      "decoder": {"cell": "lstm", "hidden_size": 24, "dropout": 0.1}},
            "language_model": {"batching": batching, "bptt_length": 16, "streams": 4},
            "training": {"epochs": 2, "device": "cpu", "threads": 1, "lr": 0.01, "precision": "fp32", **training}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """recipes/language_model/run.sh on tiny.yaml: seq2seq-train, -evaluate and -generate as a user
    runs them (a real process each)."""
    root = tmp_path_factory.mktemp("language_model")
    write_data(root / "data")
    raw = tiny(root / "data", epochs=3)
    raw["data"]["test"] = ["valid"]
    (root / "tiny.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    script = Path(__file__).parents[2] / "recipes" / "language_model" / "run.sh"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LENGTH": "30", "PREFIX": "the c"}
    result = subprocess.run(["bash", str(script), root / "data", root / "model", root / "tiny.yaml"], cwd=root,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "warning" not in result.stderr
    out = result.stdout
    assert "done: 54 steps" in out and "best validation bpc" in out  # 18 segments an epoch
    score = json.loads(out[out.index("== valid\n") + 9:].splitlines()[0])
    assert score["bpc"] > 0 and score["characters"] == 120
    sample = (root / "model" / "sample.txt").read_text(encoding="utf-8")
    assert out.endswith("== sample\n" + sample) and sample.startswith("the c") and len(sample) > 30
    return root / "model"


def test_train_writes_a_language_model_directory(trained):
    for name in ("meta.json", "recipe.json", "best.safetensors", "spm.model", "train_log.jsonl", "steps.jsonl",
                 "curves.png"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "meta.json").read_text())
    assert meta["task"] == "language_model" and meta["src_vocab_size"] == meta["tgt_vocab_size"] == 19
    log = JsonLines(trained / "train_log.jsonl").read()
    assert [r["step"] for r in log] == [18, 36, 54]
    assert {"valid_loss", "valid_ppl", "bpc", "nats_per_char"} <= set(log[0])
    assert log[-1]["bpc"] < log[0]["bpc"] and log[-1]["units"] == log[-1]["characters"] == 120
    run = load_run(trained)  # curves.png's score panel: bits per character, the lowest the best
    best = min(log, key=lambda r: r["bpc"])
    assert run.score_name == "bits per character" and len(run.score) == 3
    assert _summary(run).endswith(f"best bits per character {best['bpc']:.2f} at step {best['step']}")


def test_generate_then_evaluate(trained, in_process, tmp_path):
    code, out, err = in_process("generate", trained, "--prefix", "the d", "--length", "20")
    assert code == 0 and err == "", err
    assert out == "the d" + LanguageModel.load(trained).generate("the d", 20).removesuffix("\n") + "\n"
    sample = ["generate", trained, "--prefix", "the", "--length", "30", "--sampling", "topp:0.9", "--seed", "3",
              "--temperature", "1.5", "--num-samples", "2"]
    code, out, _ = in_process(*sample)
    assert code == 0 and out.startswith("=== sample 1 of 2\nthe") and "=== sample 2 of 2\nthe" in out
    assert in_process(*sample)[1] == out  # seeded: the same samples again
    code, out, _ = in_process(*sample, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["sample"] for r in rows] == [1, 2] and all(r["prefix"] == "the" and len(r["text"]) == 30 for r in rows)
    code, out, err = in_process("generate", trained, "--prefix", "the Z", "--length", "3", "--seed", "1")
    assert code == 0 and err.count("warning") == 2 and "'Z'" in err  # --seed unused; Z unknown

    valid = trained.parent / "data" / "valid.txt"
    code, out, err = in_process("evaluate", trained, "--src", valid, "--json")
    assert code == 0, err
    result = json.loads(out)
    best = min(JsonLines(trained / "train_log.jsonl").read(), key=lambda r: r["bpc"])
    assert result["bpc"] == round(best["bpc"], 4) and result["units"] == result["characters"] == 120
    code, out, err = in_process("evaluate", trained, "--src", valid)
    assert code == 0 and out.startswith("ppl ") and " bpc " in out


def test_score_and_generate_in_python(trained):
    lm = LanguageModel.load(trained)
    [good, odd] = lm.score(["the cat sat on the mat.\n", "tmh.a gtoa!\n"])
    assert good["bpc"] < odd["bpc"] and good["characters"] == good["units"] == 24
    assert lm.generate("the", 10, sampling="topk:1", seed=9) == lm.generate("the", 10)
    assert len(lm.generate("the", 5, sampling="topk:4", num_samples=3)) == 3


@pytest.mark.parametrize("batching", ["tbptt", "windows"])
def test_resume_equals_an_uninterrupted_run(tmp_path, batching):
    """Stopped mid-epoch and resumed: the same losses step for step and the same weights (dropout's
    generators and, with tbptt, the state carried into the next segment come from the checkpoint)."""
    data = write_data(tmp_path / "data")
    train(recipe_from_dict(tiny(data, batching)), tmp_path / "straight")
    train(recipe_from_dict(tiny(data, batching, max_steps=21)), tmp_path / "split")  # mid-epoch 2
    state = load_checkpoint(list_checkpoints(tmp_path / "split")[0],
                            build_language_model(recipe_from_dict(tiny(data)).model, 19))
    assert ("carried" in state["extra"]) == (batching == "tbptt")
    trainer = train(recipe_from_dict(tiny(data, batching)), tmp_path / "split", resume=True)

    def losses(model_dir):
        return [(r["step"], r["loss"]) for r in JsonLines(model_dir / "steps.jsonl").read()]

    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    assert trainer.progress.step == len(losses(tmp_path / "straight")) > 21
    a = load_file(str(list_checkpoints(tmp_path / "straight")[0] / "weights.safetensors"))
    b = load_file(str(list_checkpoints(tmp_path / "split")[0] / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_bad_inputs_are_one_line_errors(tmp_path, trained, in_process, assert_user_error):
    data = write_data(tmp_path / "data")
    recipe = tmp_path / "r.yaml"

    def train_with(*overrides):
        recipe.write_text(yaml.safe_dump(tiny(data)), encoding="utf-8")
        return in_process("train", recipe, "--model-dir", tmp_path / "m", *overrides)

    assert_user_error(*train_with("data.valid=nope")[::2], "nope.txt: not found", "language_model.text_suffix")
    (data / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert_user_error(*train_with("data.valid=empty")[::2], "empty.txt: no text")
    (data / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    assert_user_error(*train_with("data.train=latin1")[::2], "latin1.txt:1: bytes are not UTF-8")
    (data / "short.txt").write_text("ab\n", encoding="utf-8")
    assert_user_error(*train_with("data.train=short")[::2], "short.txt: too short", "language_model.streams")
    assert not (tmp_path / "m").exists()  # nothing written
    assert_user_error(*train_with("language_model.batching=tbtt")[::2], "did you mean 'tbptt'")

    assert_user_error(*in_process("generate", trained, "--length", "0")[::2], "--length")
    assert_user_error(*in_process("generate", trained, "--sampling", "beam")[::2], "greedy, topk:K")
    assert_user_error(*in_process("generate", trained, "--sampling", "topp:2")[::2], "topp:P")
    assert_user_error(*in_process("generate", tmp_path)[::2], "meta.json")
    valid = data / "valid.txt"
    assert_user_error(*in_process("evaluate", trained, "--src", valid, "--ref", valid)[::2], "--ref")
    assert_user_error(*in_process("evaluate", trained, "--src", data / "empty.txt")[::2], "no text")
    script = Path(__file__).parents[2] / "recipes" / "language_model" / "run.sh"  # a test split it cannot score
    result = subprocess.run(["bash", str(script), data, tmp_path / "m", recipe, "data.test=[valid, nope]"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "nope.txt: not found" in result.stderr and not (tmp_path / "m").exists()
