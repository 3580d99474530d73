"""kill -9 in the middle of an epoch, then `seq2seq-train ... --resume`: on the CPU the resumed run's
per-step losses equal an uninterrupted run's exactly, and so do its final weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml
from safetensors.torch import load_file

from seq2seq.checkpoint import checkpoint_step, list_checkpoints
from seq2seq.config import load_recipe
from seq2seq.logs import JsonLines
from seq2seq.tasks import train

STEPS_PER_EPOCH = 24  # the 48 training pairs twice over, in batches of 4 sentences
OVERRIDES = ["training.batch_size=4", "training.epochs=2", "training.checkpoint_every=5",
             "training.teacher_forcing=0.8", "model.embedding_dropout=0.1"]  # the RNG matters


def command(*args) -> list[str]:
    return [sys.executable, "-m", "seq2seq.cli.train", *map(str, args)]


def losses(model_dir) -> list[tuple[int, float | None]]:
    return [(r["step"], r["loss"]) for r in JsonLines(model_dir / "steps.jsonl").read()]


def kill_mid_epoch(process: subprocess.Popen, model_dir) -> int:
    """SIGKILL the run as soon as a checkpoint from the middle of an epoch exists; its step. The
    run ends by itself (training.epochs), so the wait is bounded by the run, not by a clock."""
    while process.poll() is None:
        steps = [checkpoint_step(p) for p in list_checkpoints(model_dir)]
        mid = [s for s in steps if s % STEPS_PER_EPOCH]
        if mid:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return mid[0]
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"no mid-epoch checkpoint before the run ended (exit {process.wait()})")


def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, reverse_corpus,
                                                                  make_tiny_recipe):
    data = reverse_corpus(tmp_path / "data")
    for side in ("src", "tgt"):
        path = data / f"train.{side}"
        path.write_text(path.read_text(encoding="utf-8") * 2, encoding="utf-8")
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(yaml.safe_dump(make_tiny_recipe(data)), encoding="utf-8")
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"

    with open(tmp_path / "killed.log", "wb") as log:  # (a pipe nobody reads could fill and block)
        run = subprocess.Popen(command(recipe_path, "--model-dir", killed, *OVERRIDES), cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
        step = kill_mid_epoch(run, killed)
    assert run.returncode == -signal.SIGKILL
    assert 0 < step < 2 * STEPS_PER_EPOCH

    result = subprocess.run(command(recipe_path, "--model-dir", killed, *OVERRIDES, "--resume"),
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout and "done: 48 steps" in result.stdout

    straight = tmp_path / "straight"  # in this process: the same code, one thread, no subprocess
    train(load_recipe(recipe_path, OVERRIDES), straight)
    assert losses(killed) == losses(straight)
    assert [s for s, _ in losses(straight)] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    a = load_file(str(list_checkpoints(straight)[0] / "weights.safetensors"))
    b = load_file(str(list_checkpoints(killed)[0] / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
