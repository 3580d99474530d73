"""What a careless or hurried user does, end to end on tiny data: every mistake is one `error:`
line with exit status 2, nothing the user had is overwritten, and a failed start can be rerun."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2seq.config import recipe_from_dict
from seq2seq.tasks import train


def cli(name: str, *args, capsys, stdin: str | None = None, monkeypatch=None):
    """A command's main through cli.common.run, as its console script calls it."""
    from seq2seq.cli.common import run
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    with pytest.raises(SystemExit) as info:
        run(importlib.import_module(f"seq2seq.cli.{name}").main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, out, err)


def assert_user_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [l for l in result.stderr.strip().splitlines() if not l.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_recipe(folder: Path, raw: dict, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text("# seq2seq-train tiny.yaml --model-dir model\n" + yaml.safe_dump(raw, sort_keys=False),
                    encoding="utf-8")
    return path


def test_a_failed_start_writes_nothing_and_can_be_rerun(tmp_path, tiny_recipe_dict, monkeypatch):
    """The model is built before anything is written: a build that fails leaves no model
    directory, so the rerun is not refused."""
    import seq2seq.tasks.translation.training as training

    recipe = recipe_from_dict(tiny_recipe_dict)
    model_dir = tmp_path / "model"
    real = training.build_model

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(training, "build_model", fail)
    with pytest.raises(RuntimeError):
        train(recipe, model_dir)
    assert not model_dir.exists()
    monkeypatch.setattr(training, "build_model", real)
    train(recipe_from_dict({**tiny_recipe_dict, "training": {**tiny_recipe_dict["training"],
                                                             "max_steps": 1}}), model_dir)
    assert (model_dir / "best.safetensors").is_file()


def test_dot_attention_with_unequal_sizes_is_a_recipe_error_and_the_rerun_works(
        tmp_path, tiny_recipe_dict, capsys):
    """Encoder output 16 (8 x 2 directions), decoder 12: the recipe check says so before any
    work, and the corrected rerun is not refused."""
    tiny_recipe_dict["model"]["attention"] = {"type": "dot"}
    tiny_recipe_dict["model"]["decoder"]["hidden_size"] = 12
    path = write_recipe(tmp_path, tiny_recipe_dict)
    model_dir = tmp_path / "model"
    result = cli("train", path, "--model-dir", model_dir, capsys=capsys)
    assert_user_error(result, "model.attention.type", "model.decoder.hidden_size", "model.encoder.hidden_size")
    assert not model_dir.exists()
    result = cli("train", path, "--model-dir", model_dir, "model.decoder.hidden_size=16",
                 "training.max_steps=1", capsys=capsys)
    assert result.returncode == 0, result.stderr


def test_unused_settings_are_warned_at_start(tmp_path, tiny_recipe_dict, capsys):
    """momentum with Adam, from the recipe; warmup_steps without warm-up, from the command line:
    one `warning:` line each on stderr, before anything else (here: a missing data folder)."""
    tiny_recipe_dict["training"]["momentum"] = 0.9
    tiny_recipe_dict["data"]["dir"] = str(tmp_path / "no_data")
    path = write_recipe(tmp_path, tiny_recipe_dict)
    result = cli("train", path, "--model-dir", tmp_path / "model", "training.warmup_steps=400",
                 capsys=capsys)
    assert_user_error(result, "no_data")
    notes = [l for l in result.stderr.splitlines() if l.startswith("warning: ")]
    assert len(notes) == 2 and "training.momentum: 0.9" in notes[0] and "training.optimizer" in notes[0]
    assert "training.warmup_steps: 400" in notes[1] and "training.scheduler" in notes[1]


@pytest.mark.parametrize("override, needle", [
    ("model.decoder.hidden_size=1048576", "GiB of memory"),  # a typo of 1024: terabytes of weights
    ("model.encoder.hidden_size=1000000000000000000000000000000", "out of range"),
    ("training.threads=100000", "training.threads"),
    ("decoding.max_length_offset=100000000000000000000", "decoding.max_length_offset"),
])
def test_huge_numbers_are_one_line_errors_and_nothing_is_written(tmp_path, tiny_recipe_dict, capsys,
                                                                 override, needle):
    path = write_recipe(tmp_path, tiny_recipe_dict)
    result = cli("train", path, "--model-dir", tmp_path / "model", override, capsys=capsys)
    assert_user_error(result, needle)
    assert not (tmp_path / "model").exists()


def test_one_training_at_a_time_in_a_model_directory(tmp_path, tiny_recipe_dict, capsys):
    """A second seq2seq-train on a directory that a running one writes (even with --overwrite,
    which would clear it under the first) is refused, naming the first's process; once that
    ends, however it ends (kill -9 here), the directory is free again."""
    import os
    import signal
    import time

    tiny_recipe_dict["training"]["epochs"] = 1000
    path = write_recipe(tmp_path, tiny_recipe_dict)
    model_dir = tmp_path / "model"
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "seq2seq.cli.train", str(path), "--model-dir",
                              str(model_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (model_dir / "meta.json").exists() and first.poll() is None:
            time.sleep(0.05)
        for flag in ("--overwrite", "--resume"):
            result = cli("train", path, "--model-dir", model_dir, flag, capsys=capsys)
            assert_user_error(result, str(model_dir), f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    result = cli("train", path, "--model-dir", model_dir, "--overwrite", "training.max_steps=1",
                 capsys=capsys)
    assert result.returncode == 0, result.stderr


def test_a_failed_start_leaves_no_lock_behind(tmp_path, tiny_recipe_dict, capsys):
    tiny_recipe_dict["data"]["dir"] = str(tmp_path / "no_data")
    result = cli("train", write_recipe(tmp_path, tiny_recipe_dict), "--model-dir", tmp_path / "model",
                 capsys=capsys)
    assert_user_error(result, "no_data")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("flag", [[], ["--overwrite"]])
def test_a_folder_that_is_not_a_model_keeps_its_files(tmp_path, tiny_recipe_dict, capsys, flag):
    """--model-dir pointed at the user's own folder, which happens to hold a checkpoints/ folder
    and a steps.jsonl of another tool: no meta.json, so not a seq2seq model, and nothing of it is
    overwritten or deleted (--overwrite deletes what training writes, by name)."""
    folder = tmp_path / "project"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "notes.txt").write_text("precious\n")
    (folder / "steps.jsonl").write_text("mine\n")
    result = cli("train", write_recipe(tmp_path, tiny_recipe_dict), "--model-dir", folder, *flag,
                 capsys=capsys)
    assert_user_error(result, str(folder), "checkpoints", "steps.jsonl", "meta.json")
    assert (folder / "checkpoints" / "notes.txt").read_text() == "precious\n"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "steps.jsonl"]


def test_an_empty_model_dir_is_an_error_not_the_current_directory(tmp_path, tiny_recipe_dict, capsys):
    result = cli("train", write_recipe(tmp_path, tiny_recipe_dict), "--model-dir", "", capsys=capsys)
    assert_user_error(result, "--model-dir", "empty")


def test_resume_refuses_what_the_checkpoint_overrides(tmp_path, tiny_recipe_dict, capsys):
    """--resume restores optimizer, schedule and random state from the checkpoint: a new lr was
    silently lost (and recorded in recipe.json as if used), a new optimizer was a traceback."""
    path = write_recipe(tmp_path, tiny_recipe_dict)
    model_dir = tmp_path / "model"
    assert cli("train", path, "--model-dir", model_dir, "training.max_steps=1", capsys=capsys).returncode == 0
    for override, needle in [("training.lr=0.5", "training.lr: 0.5 (the run has 0.01)"),
                             ("training.optimizer=sgd", "training.optimizer: 'sgd' (the run has 'adam')"),
                             ("training.seed=7", "training.seed: 7 (the run has 1)")]:
        result = cli("train", path, "--model-dir", model_dir, "--resume", "training.max_steps=2", override,
                     capsys=capsys)
        assert_user_error(result, str(model_dir), needle, "--overwrite")
    result = cli("train", path, "--model-dir", model_dir, "--resume", "training.max_steps=2", capsys=capsys)
    assert result.returncode == 0 and "done: 2 steps" in result.stdout, result.stderr
