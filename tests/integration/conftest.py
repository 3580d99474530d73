"""Fixtures the command-line tests share (test_cli.py, test_streaming.py, test_sampling_cli.py):
the reversal task in a work folder, a tiny model trained on it once per session through the real
`seq2seq-train`, and a talkative copy of that model; and for the task rooms' command tests
(test_classify.py, test_language_model_cli.py, test_tag.py) a command run in process and the one-line error check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, reverse_corpus, make_tiny_recipe) -> Path:
    """data/ with the reversal task; tiny.yaml points elsewhere, so commands pass data.dir=."""
    root = tmp_path_factory.mktemp("cli")
    reverse_corpus(root / "data")
    text = "# seq2seq-train tiny.yaml --model-dir model data.dir=data\n"
    text += yaml.safe_dump(make_tiny_recipe("nowhere"), sort_keys=False)
    (root / "tiny.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def trained(workdir) -> Path:
    """workdir/model, trained by `python -m seq2seq.cli.train` (3 steps)."""
    env = {**os.environ, "HF_DATASETS_CACHE": str(workdir / "hf_cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "seq2seq.cli.train", "tiny.yaml", "--model-dir",
                             "model", f"data.dir={workdir / 'data'}"], cwd=workdir,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "done: 3 steps" in result.stdout  # 48 pairs / 16 per batch, one epoch
    return workdir / "model"


@pytest.fixture(scope="session")
def talkative(trained, tmp_path_factory) -> Path:
    """The trained model with EOS made unlikely (output bias -30): it writes up to its length
    limit for every source, so an empty line that reached the search would come out as text."""
    from seq2seq.checkpoint import save_weights
    from seq2seq.tasks.translation.translator import Translator
    from seq2seq.vocab import EOS
    model_dir = tmp_path_factory.mktemp("talkative") / "model"
    shutil.copytree(trained, model_dir)
    translator = Translator.load(model_dir, "cpu")
    with torch.no_grad():
        translator.model.generator.bias[EOS] -= 30.0
    save_weights(translator.model, model_dir / "best.safetensors")
    return model_dir


@pytest.fixture
def in_process(capsys, monkeypatch):
    """in_process(command, *args, stdin=None) -> (exit code, out, err): the command's main through
    cli.common.run, as its entry point calls it, in this process (stdin: a str the command reads)."""
    import importlib
    import io

    from seq2seq.cli.common import run

    def call(name: str, *args, stdin: str | None = None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
        with pytest.raises(SystemExit) as info:
            run(importlib.import_module(f"seq2seq.cli.{name}").main, [str(a) for a in args])
        out, err = capsys.readouterr()
        return info.value.code, out, err

    return call


def _assert_user_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def assert_user_error():
    """assert_user_error(code, err, *needles): exit status 2 and one line on stderr, 'error: ...'
    holding every needle."""
    return _assert_user_error
