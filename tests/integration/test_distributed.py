"""Data-parallel training on CPU (gloo, 2 processes through torchrun) and gradient accumulation:
every split of the same batches gives the same updates."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from seq2seq.config import recipe_from_dict
from seq2seq.tasks import train


def steps(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "steps.jsonl").read_text().splitlines()]


def last_weights(model_dir: Path) -> dict:
    newest = sorted((model_dir / "checkpoints").glob("step_*"))[-1]
    return load_file(str(newest / "weights.safetensors"))


def assert_same_run(a: Path, b: Path) -> None:
    sa, sb = steps(a), steps(b)
    assert [s["step"] for s in sa] == [s["step"] for s in sb]
    assert [s["tokens"] for s in sa] == [s["tokens"] for s in sb]
    assert [s["loss"] for s in sa] == pytest.approx([s["loss"] for s in sb], rel=1e-5)
    wa, wb = last_weights(a), last_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-5)


@pytest.fixture
def recipe_file(tmp_path, tiny_recipe_dict) -> Path:
    raw = copy.deepcopy(tiny_recipe_dict)
    raw["training"].update(batch_size=6, epochs=1, log_every=1)  # 8 batches of 6 sentences
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def seq2seq_train(args: list[str], cwd: Path, processes: int = 1) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "seq2seq.cli.train"]
    if processes > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  f"--nproc-per-node={processes}", "-m", "seq2seq.cli.train"]
    done = subprocess.run(launch + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_equal_one_process_with_the_doubled_batch(tmp_path, recipe_file):
    seq2seq_train([str(recipe_file), "--model-dir", "two", "training.max_steps=3"], tmp_path, 2)
    seq2seq_train([str(recipe_file), "--model-dir", "one", "training.max_steps=3",
                   "training.accumulate=2"], tmp_path)
    assert [s["step"] for s in steps(tmp_path / "two")] == [1, 2, 3]  # written once, by rank 0
    assert_same_run(tmp_path / "two", tmp_path / "one")


def test_a_two_process_run_resumes_as_one_process(tmp_path, recipe_file):
    seq2seq_train([str(recipe_file), "--model-dir", "split", "training.max_steps=2"], tmp_path, 2)
    seq2seq_train([str(recipe_file), "--model-dir", "split", "training.max_steps=4",
                   "training.accumulate=2", "--resume"], tmp_path)
    seq2seq_train([str(recipe_file), "--model-dir", "straight", "training.max_steps=4",
                   "training.accumulate=2"], tmp_path)
    assert [s["step"] for s in steps(tmp_path / "split")] == [1, 2, 3, 4]
    assert_same_run(tmp_path / "split", tmp_path / "straight")


def test_a_two_process_run_with_dropout_resumes_exactly(tmp_path, recipe_file):
    """Each process draws its own dropout and scheduled-sampling noise; a resume restores every
    process's generators, so the resumed run equals the uninterrupted one step for step."""
    noisy = [str(recipe_file), "training.max_steps=4", "training.checkpoint_every=2",
             "training.teacher_forcing=0.8", "model.embedding_dropout=0.3"]
    seq2seq_train(noisy + ["--model-dir", "straight"], tmp_path, 2)
    shutil.copytree(tmp_path / "straight", tmp_path / "split")
    shutil.rmtree(tmp_path / "split" / "checkpoints" / "step_000000004")  # as if killed after step 3
    seq2seq_train(noisy + ["--model-dir", "split", "--resume"], tmp_path, 2)
    assert [s["step"] for s in steps(tmp_path / "split")] == [1, 2, 3, 4]
    assert_same_run(tmp_path / "split", tmp_path / "straight")


# Run as `torchrun ... HOOK_SCRIPT args`: seq2seq-train with rank 0 made slow where the others wait.
HOOK_SCRIPT = """
import os, time
import seq2seq.tasks.translation.training
if os.environ["RANK"] == "0":
    real = seq2seq.tasks.translation.training.build_vocabs
    def slow(*args, **kwargs):
        time.sleep(600)
        return real(*args, **kwargs)
    seq2seq.tasks.translation.training.build_vocabs = slow
from seq2seq.cli.train import entry
entry()
"""


def train_ranks(args: list[str], cwd: Path, script: list[str] = ["-m", "seq2seq.cli.train"]) -> list[str]:
    """2 processes under torchrun, each with its own log file; each rank's stderr. A rank that is
    left waiting fails the test through the timeout."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
              "--log-dir", str(cwd / "logs"), "--redirects", "3", *script]
    done = subprocess.run(launch + args, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    return [next((cwd / "logs").rglob(f"{rank}/stderr.log")).read_text() for rank in (0, 1)]


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("blocked, when", [("spm.model", "before training, while the others wait"),
                                           ("steps.jsonl", "at the first step")])
def test_an_error_on_rank_0_ends_every_rank_with_its_message(tmp_path, recipe_file, blocked, when):
    """Rank 0 alone writes the model directory; a file it cannot write (a directory in the way)
    ends both processes, each with rank 0's one-line message, none with a traceback."""
    (tmp_path / "m" / blocked).mkdir(parents=True)
    stderr = train_ranks([str(recipe_file), "--model-dir", "m"], tmp_path)
    assert last_line(stderr[0]).startswith("error: ") and blocked in last_line(stderr[0])
    assert last_line(stderr[1]) == last_line(stderr[0])
    assert "Traceback" not in stderr[0] + stderr[1]


def test_a_rank_left_waiting_past_the_timeout_ends_with_one_line(tmp_path, recipe_file):
    (tmp_path / "hook.py").write_text(HOOK_SCRIPT)
    stderr = train_ranks([str(recipe_file), "--model-dir", "m", "training.dist_timeout_minutes=0.05"],
                         tmp_path, [str(tmp_path / "hook.py")])
    assert last_line(stderr[1]).startswith("error: rank 1: ")
    assert "training.dist_timeout_minutes (0.05)" in last_line(stderr[1])
    assert "Traceback" not in stderr[1]


def test_accumulating_two_half_batches_equals_one_full_batch(tmp_path, tiny_recipe_dict):
    raw = copy.deepcopy(tiny_recipe_dict)
    raw["training"].update(max_steps=1)
    trainer = train(recipe_from_dict(raw), tmp_path / "m")
    batch = trainer.epoch_batches(1)[0]
    weights = copy.deepcopy(trainer.model.state_dict())
    optimizer = copy.deepcopy(trainer.optimizer.state_dict())

    full = trainer.train_step(batch)
    after_full = copy.deepcopy(trainer.model.state_dict())
    trainer.model.load_state_dict(weights)
    trainer.optimizer.load_state_dict(optimizer)
    halves = trainer.train_step([batch[: len(batch) // 2], batch[len(batch) // 2:]])

    assert halves[1] == full[1]  # target tokens
    assert halves[0] == pytest.approx(full[0], rel=1e-6) and halves[2] == pytest.approx(full[2], rel=1e-5)
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, after_full[key], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(after_full[k], weights[k]) for k in weights)  # the step did change them
