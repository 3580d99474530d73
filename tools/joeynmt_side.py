"""The JoeyNMT 2.3 side of tools/vs_joeynmt.py: its venv (the pinned packages, in order, and the
one-line fix its builders.py needs beside torch 2.13), its configuration with the architecture,
training and decoding of one of our recipes, and the figures read from its log lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from seq2seq.cli import SET_HERE
from seq2seq.config import Recipe
from seq2seq.errors import UserError

PINS = {"torch": "2.13.0", "joeynmt": "2.3.0", "importlib_metadata": None, "sentencepiece": "0.2.0"}
JOEY_ATTENTION = {"bahdanau": "bahdanau", "dot": "luong", "general": "luong"}  # luong = bilinear
NEVER = 10 ** 9  # JoeyNMT: a validation frequency never reached


# ---------------------------------------------------------------- the JoeyNMT venv

def ensure_venv(venv: Path) -> Path:
    """The venv's python, with the pinned packages installed (in PINS order) and builders.py patched."""
    python = venv / "bin" / "python"
    if not python.exists():
        step([sys.executable, "-m", "venv", str(venv)], f"creating the venv {venv}")
    ask = ("import json, importlib.metadata as m\nv = {}\nfor p in %r:\n    try: v[p] = m.version(p)\n"
           "    except m.PackageNotFoundError: pass\nprint(json.dumps(v))" % list(PINS))
    have = json.loads(subprocess.run([str(python), "-c", ask], capture_output=True, text=True,
                                     env=venv_env()).stdout or "{}")
    for name, version in PINS.items():  # in order: torch before joeynmt keeps pip off the CUDA build
        if name not in have or version not in (None, have[name].split("+")[0]):
            spec = f"{name}=={version}" if version else name
            step([str(python), "-m", "pip", "install", "-q", spec], f"pip install {spec} into {venv}")
    found = list(venv.glob("lib/python*/site-packages/joeynmt/builders.py"))
    if len(found) != 1:
        raise UserError(f"--venv {venv}: no joeynmt/builders.py in its site-packages")
    text = found[0].read_text(encoding="utf-8")
    if drop_verbose(text) != text:
        found[0].write_text(drop_verbose(text), encoding="utf-8")
        print(f"vs_joeynmt: patched {found[0]} (ReduceLROnPlateau without verbose)", file=sys.stderr)
    return python


def step(argv: list[str], what: str) -> None:
    """A setup command, its output shown; a one-line error if it fails."""
    print(f"vs_joeynmt: {what}", file=sys.stderr)
    code = subprocess.run(argv, env=venv_env()).returncode
    if code:
        raise UserError(f"{what} failed (exit status {code})")


def venv_env() -> dict[str, str]:
    """This process's environment without PYTHONPATH and PYTHONHOME (the venv sees its own packages)
    and without the cache sizes that seq2seq.cli set (JoeyNMT runs with torch's defaults)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", *SET_HERE)}


def drop_verbose(builders: str) -> str:
    """JoeyNMT 2.3's builders.py without its `"verbose": False,` line (ReduceLROnPlateau's kwargs)."""
    return re.sub(r'\n[ \t]*"verbose": False,[ \t]*(?=\n)', "", builders)



# ---------------------------------------------------------------- configuration

def write_vocab_file(spm_model: Path, path: Path) -> Path:
    """Every piece of the sentencepiece model, in id order: JoeyNMT's voc_file (its specials first)."""
    path.write_text("".join(piece + "\n" for piece, _ in pieces(spm_model)), encoding="utf-8")
    return path


def pieces(spm_model: Path) -> list[tuple[str, float]]:
    """What a sentencepiece model segments by (its file also records where it was trained)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]


def joey_config(recipe: Recipe, *, data: Path, spm_model: Path, voc_file: Path, model_dir: Path,
                device: str = "cpu", beam_size: int = 5, epochs: int = 1, updates: int | None = None,
                logging_freq: int = 100, load_model: Path | None = None) -> dict:
    """A JoeyNMT 2.3 configuration with the recipe's architecture, training and decoding."""
    m, t, d = recipe.model, recipe.training, recipe.decoding
    lacking = {"model.copy": m.copy, "model.tie_output": m.tie_output,
               "model.source_word_dropout": m.source_word_dropout,
               "model.decoder.output_dropout": m.decoder.output_dropout,
               # JoeyNMT drops the encoder's input once (its embedding dropout) and never its output ...
               "model.encoder.dropout_io true": m.encoder.dropout_io and m.encoder.dropout > 0,
               # ... and the fed-back attentional vector with the target embedding
               "model.decoder.feed_dropout other than model.embedding_dropout":
                   m.decoder.input_feeding and m.decoder.feed_dropout != m.embedding_dropout,
               "model.attention.coverage": m.attention.coverage, "training.coverage_weight": t.coverage_weight,
               "training.teacher_forcing below 1": t.teacher_forcing < 1,
               "model.decoder.type conditional": m.decoder.type != "recurrent",
               "the cell rnn (JoeyNMT builds an LSTM)": "rnn" in (m.encoder.cell, m.decoder.cell),
               "training.batch_type sentences": t.batch_type != "tokens", "training.accumulate": t.accumulate > 1,
               "vocab.joint false": not recipe.vocab.joint}
    unsupported = [name for name, used in lacking.items() if used]
    if m.attention.type not in JOEY_ATTENTION:
        unsupported.append(f"model.attention.type {m.attention.type}")
    if unsupported:
        raise UserError(f"{recipe.name}: JoeyNMT 2.3 has no equivalent of {', '.join(unsupported)}")
    side = {"max_length": recipe.data.max_length, "lowercase": False, "normalize": False, "level": "bpe",
            "voc_file": str(voc_file), "tokenizer_type": "sentencepiece",
            "tokenizer_cfg": {"model_file": str(spm_model), "pretokenizer": "none"}}
    embeddings = {"embedding_dim": m.embedding_size, "scale": False, "dropout": m.embedding_dropout}
    training = {
        "random_seed": t.seed, "optimizer": t.optimizer, "learning_rate": t.lr, "learning_rate_min": t.min_lr,
        "weight_decay": t.weight_decay, "clip_grad_norm": t.clip_norm or None, "label_smoothing": t.label_smoothing,
        "loss": "crossentropy", "normalization": "tokens", "batch_size": t.batch_size, "batch_type": "token",
        "scheduling": "plateau" if t.scheduler == "plateau" else None, "patience": t.plateau_patience,
        "decrease_factor": t.plateau_factor, "early_stopping_metric": "bleu", "epochs": epochs,
        "logging_freq": logging_freq, "validation_freq": logging_freq * NEVER, "model_dir": str(model_dir),
        "overwrite": True, "shuffle": True, "use_cuda": device == "cuda", "fp16": device == "cuda",
        "keep_best_ckpts": 1, "print_valid_sents": []}
    if updates:
        training["updates"] = updates
    testing = {"beam_size": beam_size, "beam_alpha": d.length_penalty, "batch_size": 64, "batch_type": "sentence",
               "max_output_length": -1, "eval_metrics": ["bleu"], "sacrebleu_cfg": {"tokenize": "13a"}}
    if load_model:
        testing["load_model"] = str(load_model)
    return {
        "name": f"joeynmt_{recipe.name}", "joeynmt_version": "2.3.0", "model_dir": str(model_dir),
        "data": {"train": str(data / "train"), "dev": str(data / "dev"), "test": str(data / "test"),
                 "dataset_type": "plain", "src": {"lang": recipe.data.src, **side},
                 "trg": {"lang": recipe.data.tgt, **side}},
        "training": training, "testing": testing,
        "model": {
            "tied_embeddings": m.share_embeddings,
            "encoder": {"type": "recurrent", "rnn_type": m.encoder.cell, "embeddings": embeddings,
                        "hidden_size": m.encoder.hidden_size, "bidirectional": m.encoder.bidirectional,
                        "dropout": m.encoder.dropout, "num_layers": m.encoder.num_layers},
            "decoder": {"type": "recurrent", "rnn_type": m.decoder.cell, "embeddings": embeddings,
                        "hidden_size": m.decoder.hidden_size, "dropout": m.decoder.dropout,
                        "hidden_dropout": m.decoder.dropout, "num_layers": m.decoder.num_layers,
                        "input_feeding": m.decoder.input_feeding, "init_hidden": m.decoder.init,
                        "attention": JOEY_ATTENTION[m.attention.type]}},
    }



# ---------------------------------------------------------------- its log lines

JOEY_STEP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)", re.M)


def joey_window_rate(log: str, warmup: int, steps: int) -> tuple[float, float]:
    """JoeyNMT's target tokens/s over steps warmup+1 .. warmup+steps, from its log lines (logged
    every gcd(warmup, steps) steps): each interval's own tokens/s times the time between the lines,
    summed, over the time from the line of step `warmup` to that of the last step. Also the tokens
    per step."""
    lines = {int(step): (datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), float(rate))
             for stamp, step, rate in JOEY_STEP.findall(log)}
    logged = sorted(s for s in lines if warmup <= s <= warmup + steps)
    if not logged or logged[0] != warmup or logged[-1] != warmup + steps:
        raise UserError(f"JoeyNMT's log has no 'Tokens per Sec' lines at steps {warmup} and {warmup + steps}")
    tokens = sum(lines[b][1] * (lines[b][0] - lines[a][0]) for a, b in zip(logged, logged[1:]))
    return tokens / (lines[logged[-1]][0] - lines[warmup][0]), tokens / steps


def joey_generation_seconds(log: str) -> float:
    """The last 'Generation took ...[sec]' line: the test set's (the dev set's comes first)."""
    found = re.findall(r"Generation took ([\d.]+)\[sec\]", log)
    if len(found) < 2:
        raise UserError("JoeyNMT's test log lacks the dev and test 'Generation took' lines")
    return float(found[-1])
