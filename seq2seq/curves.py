"""Learning curves: training and validation loss, the validation score and the learning rate, by step.

The trainer redraws MODEL_DIR/curves.png after every validation (`redraw_curves`); `seq2seq-plot`
overlays several model directories in one picture to compare recipes (`plot_runs`). Both read
the logs of a model directory (seq2seq/logs.py):

    steps.jsonl       loss of every update: drawn faint, with its moving average over it
    train_log.jsonl   valid_loss, the score (bleu or rougeL) and lr at every validation

The learning rate is the one recorded at each validation, drawn as the value in force since the
one before (where step records carry an "lr", those are drawn instead). Figures are built
without pyplot (no global state, no display) and rendered by Agg; the file is written to a
temporary name and renamed, so a reader never sees half a picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm import tqdm

from seq2seq.checkpoint import CURVES, STEP_LOG, TRAIN_LOG, atomic_write
from seq2seq.errors import UserError
from seq2seq.logs import JsonLines

SCORES = {"bleu": "BLEU", "rougeL": "ROUGE-L F1", "accuracy": "accuracy (%)", "f1": "entity F1",
          "bpc": "bits per character"}  # validation score key -> axis label
LOWER_IS_BETTER = {"bits per character"}  # the labels of scores whose best is the lowest
LOGS = (STEP_LOG, TRAIN_LOG)


@dataclass
class Run:
    """What is drawn of one model directory: (step, value) series."""

    name: str
    train: list[tuple[int, float]] = field(default_factory=list)  # finite training losses
    valid: list[tuple[int, float]] = field(default_factory=list)  # validation losses
    score: list[tuple[int, float]] = field(default_factory=list)  # validation scores
    score_name: str = ""  # a value of SCORES; "" before the first validation
    lr: list[tuple[int, float]] = field(default_factory=list)


def _number(record: dict, key: str) -> float | None:
    value = record.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _series(records: list[dict], key: str) -> list[tuple[int, float]]:
    """(step, value) of the records that hold an int step and a finite number under `key`."""
    out = []
    for r in records:
        value = _number(r, key)
        if isinstance(r.get("step"), int) and value is not None:
            out.append((r["step"], value))
    return out


def load_run(model_dir: str | Path, name: str | None = None) -> Run:
    """Read a model directory's logs; a directory without either log is a UserError."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: {'not a directory' if model_dir.exists() else 'not found'}")
    if not any((model_dir / log).is_file() for log in LOGS):
        raise UserError(f"{model_dir}: no training logs ({' or '.join(LOGS)}); is it a model directory "
                        "that has trained at least one step?")
    steps = JsonLines(model_dir / STEP_LOG).read()
    validations = JsonLines(model_dir / TRAIN_LOG).read()
    run = Run(name or model_dir.resolve().name, train=_series(steps, "loss"),
              valid=_series(validations, "valid_loss"))
    for key, label in SCORES.items():
        if any(key in r for r in validations):
            run.score, run.score_name = _series(validations, key), label
            break
    step_lr = _series(steps, "lr")
    run.lr = step_lr or _series(validations, "lr")
    return run


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of `window` values: out[i] = mean(values[i : i + window]), len n - window + 1."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    return (sums[window:] - sums[:-window]) / window


def _xy(series: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not series:
        return np.zeros(0), np.zeros(0)
    x, y = zip(*series)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _draw_run(axes, run: Run, color, label: str, tag_score: bool) -> None:
    """One run on the three panels (loss, score, learning rate) in one colour; `label` prefixes
    the loss lines, `tag_score` names the score (runs with different ones share the panel)."""
    loss, score, rate = axes
    x, y = _xy(run.train)
    if len(y):
        window = max(1, min(200, len(y) // 25))
        loss.plot(x, y, color=color, alpha=0.12 if window > 1 else 0.6, linewidth=0.6)
        if window > 1:
            loss.plot(x[window - 1:], moving_average(y, window), color=color, linewidth=1.4,
                      label=f"{label}training (mean of {window} steps)")
        else:
            loss.lines[-1].set_label(f"{label}training")
    x, y = _xy(run.valid)
    if len(y):
        loss.plot(x, y, color=color, linestyle="--", marker="o", markersize=3.5,
                  label=f"{label}validation")
    x, y = _xy(run.score)
    if len(y):
        tag = f" ({run.score_name})" if tag_score else ""
        score.plot(x, y, color=color, marker="o", markersize=3.5, label=f"{run.name}{tag}")
        best = int(np.argmin(y) if run.score_name in LOWER_IS_BETTER else np.argmax(y))
        score.plot([x[best]], [y[best]], color=color, marker="*", markersize=11, linestyle="none")
    x, y = _xy(run.lr)
    if len(y):
        rate.plot(x, y, color=color, marker=".", drawstyle="steps-pre", label=run.name)


def plot_runs(runs: list[Run], path: str | Path, title: str = "") -> None:
    """Draw the runs (one colour each) on three panels sharing the step axis; write `path`
    atomically, in the image format its suffix names (png when it names none)."""
    fig = Figure(figsize=(8.5, 9.0), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in canvas.get_supported_filetypes():
        raise UserError(f"{path}: unknown image type '.{fmt}' (use one of: "
                        f"{', '.join(sorted(canvas.get_supported_filetypes()))})")
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.4]})
    many = len(runs) > 1
    colors = [f"C{i % 10}" for i in range(len(runs))]
    names = {r.score_name for r in runs if r.score_name}
    for run, color in zip(runs, colors):
        _draw_run(axes, run, color, f"{run.name}: " if many else "", len(names) > 1)
    loss, score, rate = axes
    loss.set_ylabel("loss per target token")
    score.set_ylabel(names.pop() if len(names) == 1 else "validation score")
    rate.set_ylabel("learning rate")
    rate.set_xlabel("step (update)")
    rate.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, empty in ((loss, "no steps logged yet"), (score, "no validation yet"),
                      (rate, "no learning rate logged yet")):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            if ax is loss or many:
                ax.legend(fontsize="small", loc="best")
        else:
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color="gray")
    if rate.lines and all(y > 0 for r in runs for _, y in r.lr):
        rate.set_yscale("log")
    if not title and not many:
        title = _summary(runs[0])
    fig.suptitle(title or f"{len(runs)} runs: " + ", ".join(r.name for r in runs), fontsize="medium")
    fig.tight_layout()
    atomic_write(Path(path), lambda p: fig.savefig(p, format=fmt))


def _summary(run: Run) -> str:
    """'NAME: step 400; best BLEU 31.20 at step 300'."""
    last = max([s for s, _ in run.train + run.valid] or [0])
    text = f"{run.name}: step {last}"
    if run.score:
        step, best = (min if run.score_name in LOWER_IS_BETTER else max)(run.score, key=lambda sv: sv[1])
        text += f"; best {run.score_name} {best:.2f} at step {step}"
    return text


def redraw_curves(model_dir: Path) -> None:
    """Redraw MODEL_DIR/curves.png from its logs. A picture must never stop training: any failure
    is one warning line and training goes on."""
    path = Path(model_dir) / CURVES
    try:
        plot_runs([load_run(model_dir)], path)
    except Exception as e:  # noqa: BLE001 (deliberately broad: see the docstring)
        first = (str(e).splitlines() or [""])[0]
        tqdm.write(f"warning: {path} not redrawn ({type(e).__name__}: {first})")
