"""Learning curves: MODEL_DIR/curves.png redrawn at every validation of a real tiny training run,
a plotting failure that only warns, the logs read back exactly, and seq2seq-plot end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import seq2seq.curves
from seq2seq.cli.plot import labels
from seq2seq.config import recipe_from_dict
from seq2seq.curves import Run, load_run, moving_average, plot_runs
from seq2seq.tasks import train

PNG = b"\x89PNG\r\n\x1a\n"


def in_process(*args, capsys) -> subprocess.CompletedProcess:
    """seq2seq-plot ARGS through cli.common.run, as the entry point calls it."""
    from seq2seq.cli.common import run
    from seq2seq.cli.plot import main
    with pytest.raises(SystemExit) as info:
        run(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, out, err)


def validations(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, reverse_corpus, make_tiny_recipe):
    """A tiny run validating every 2 steps (3 steps per epoch, 2 epochs: steps 2, 4 and 6); every
    picture written is kept, with the number of validations logged when it was drawn."""
    root = tmp_path_factory.mktemp("curves")
    raw = make_tiny_recipe(reverse_corpus(root / "data"))
    raw["training"].update(epochs=2, validate_every=2)
    drawn = []
    real = seq2seq.curves.plot_runs

    def spy(runs, path, title=""):
        real(runs, path, title)
        drawn.append((len(validations(Path(path).parent)), Path(path).read_bytes()))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(seq2seq.curves, "plot_runs", spy)
        train(recipe_from_dict(raw), root / "model")
    return root / "model", drawn


def test_training_redraws_curves_png_at_every_validation(trained):
    model_dir, drawn = trained
    assert [r["step"] for r in validations(model_dir)] == [2, 4, 6]
    assert [n for n, _ in drawn] == [1, 2, 3]  # once per validation, after its record was written
    assert all(png.startswith(PNG) for _, png in drawn)
    assert len({png for _, png in drawn}) == 3  # each one redrawn with the new point
    assert (model_dir / "curves.png").read_bytes() == drawn[-1][1]
    assert not list(model_dir.glob("*.tmp"))  # written through a temporary name, renamed
    height, width = matplotlib.image.imread(model_dir / "curves.png").shape[:2]
    assert (width, height) == (850, 900)


def test_plotting_failure_is_one_warning_and_training_goes_on(tmp_path, data_dir, tiny_recipe_dict,
                                                               monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("no fonts\nsecond line")

    monkeypatch.setattr(seq2seq.curves, "plot_runs", broken)
    tiny_recipe_dict["training"].update(validate_every=2)
    trainer = train(recipe_from_dict(tiny_recipe_dict), tmp_path / "model")
    assert trainer.progress.step == 3 and (tmp_path / "model" / "best.safetensors").exists()
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    logged = validations(tmp_path / "model")  # at step 2 and at the end
    assert len(logged) >= 2 and warnings == [f"warning: {tmp_path / 'model' / 'curves.png'} not "
                                             "redrawn (RuntimeError: no fonts)"] * len(logged)
    assert not (tmp_path / "model" / "curves.png").exists()


def write_logs(model_dir: Path, steps: list, valid: list) -> Path:
    model_dir.mkdir(parents=True)
    (model_dir / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in steps) + '{"step": 9, "lo')
    (model_dir / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    return model_dir


@pytest.fixture
def summariser_logs(tmp_path) -> Path:
    """Hand-written logs of a ROUGE run: a skipped step (loss null), a half line from a kill."""
    steps = [{"step": 1, "loss": 4.0, "lr": 0.5}, {"step": 2, "loss": None, "skipped": True, "lr": 0.5},
             {"step": 3, "loss": 3.0, "lr": 0.25}, {"step": 4, "loss": 2.5, "lr": 0.25}]
    valid = [{"step": 2, "valid_loss": 3.5, "rougeL": 10.0, "lr": 0.5},
             {"step": 4, "valid_loss": 3.25, "rougeL": 12.5, "lr": 0.25}]
    return write_logs(tmp_path / "runs" / "summariser", steps, valid)


def test_load_run_reads_the_logs_exactly(summariser_logs):
    run = load_run(summariser_logs)
    assert run.name == "summariser"
    assert run.train == [(1, 4.0), (3, 3.0), (4, 2.5)]  # the skipped step is not drawn
    assert run.valid == [(2, 3.5), (4, 3.25)]
    assert (run.score, run.score_name) == ([(2, 10.0), (4, 12.5)], "ROUGE-L F1")
    assert run.lr == [(1, 0.5), (2, 0.5), (3, 0.25), (4, 0.25)]  # per step, where steps carry it


def test_moving_average_is_the_trailing_mean():
    assert moving_average(np.array([1.0, 2.0, 3.0, 10.0]), 2).tolist() == [1.5, 2.5, 6.5]


def test_seq2seq_plot_overlays_two_runs(trained, summariser_logs, tmp_path, capsys):
    model_dir, _ = trained
    out = tmp_path / "compare.png"
    result = in_process(model_dir, summariser_logs, "--output", out, capsys=capsys)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out} (2 runs: model, summariser)"
    assert out.read_bytes().startswith(PNG)
    single = tmp_path / "single.png"
    plot_runs([load_run(model_dir)], single)
    assert single.read_bytes() != out.read_bytes()


def test_seq2seq_plot_writes_pdf_too(summariser_logs, tmp_path, capsys):
    result = in_process(summariser_logs, "--output", tmp_path / "c.pdf", capsys=capsys)
    assert result.returncode == 0 and (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_runs_with_the_same_name_are_labelled_by_path(tmp_path):
    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    assert labels([a, b, tmp_path / "c"]) == [str(a), str(b), "c"]


@pytest.mark.parametrize("case, needle", [("missing", "not found"), ("empty", "no training logs"),
                                          ("file", "not a directory"), ("suffix", "unknown image type")])
def test_seq2seq_plot_bad_input_is_one_line(case, needle, summariser_logs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    args = {"missing": [summariser_logs, tmp_path / "nope"], "empty": [summariser_logs, tmp_path / "empty"],
            "file": [tmp_path / "file"], "suffix": [summariser_logs, "--output", tmp_path / "c.xyz"]}[case]
    result = in_process(*args, capsys=capsys)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not (tmp_path / "curves.png").exists()


def test_an_empty_run_draws_placeholders(tmp_path):
    plot_runs([Run("fresh")], tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)
