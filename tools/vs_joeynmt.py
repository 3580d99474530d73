"""Side by side with JoeyNMT 2.3: training target tokens/s and beam-5 decoding sentences/s of the
Multi30k reference and fast recipes, on the same data and the same sentencepiece model, measured
alternately (ours, JoeyNMT, ours, JoeyNMT, ... for --rounds rounds), with the median of each
round's ratio:

    python tools/vs_joeynmt.py --data-dir ../shared/data/multi30k --venv /work/venvs/joeynmt --out DIR

1. The venv (created if missing; idempotent): torch==2.13.0 first (so that pip keeps the CPU build),
   then joeynmt==2.3.0, importlib_metadata (imported by JoeyNMT, not declared) and
   sentencepiece==0.2.0 (0.2.3 lacks SetVocabulary); then `"verbose": False` is dropped from the
   ReduceLROnPlateau arguments in the venv's joeynmt/builders.py (torch 2.13 rejects it).
2. DIR/data: the first --train-lines of train, the first 20 lines of val (the end-of-training
   validation and the decoding warm-up of both) and the first --decode-lines of test_2016_flickr.
   For each recipe, our model for decoding is trained first (--decode-epochs over that data); its
   sentencepiece model (spm.model) and its pieces, as a vocabulary file, are what JoeyNMT reads
   (`tokenizer_type: sentencepiece`, `voc_file`), so both sides split every line alike and have
   the same 8,000-entry vocabulary. JoeyNMT's model for decoding is then trained as long. Both
   stay in DIR/<recipe> for a rerun with the same settings (delete the folder to train anew).
3. Training: each side trains --warmup + --steps steps from scratch in a fresh process; the figure
   is target tokens (with EOS, padding excluded; both count alike) over the time from the end of
   step --warmup to the end of the last step, so start-up, data loading, the first steps and the
   final validation and save are all outside it. Ours: seq2seq-train's main() in a subprocess
   with Trainer.train_step timed (training.threads=0: all cores). JoeyNMT: `python -m joeynmt
   train` in the venv, logging every gcd(warmup, steps) steps; its log lines (time stamps to the
   millisecond, and its own "Tokens per Sec" over each interval) give the same window.
4. Decoding: beam --beam-size over the --decode-lines test sentences, each side's batch as its
   users get it by default (ours: seq2seq-translate, 64 sentences a batch for beam search,
   sorted by length; JoeyNMT: `python -m joeynmt test`, testing.batch_size 64
   sentences in file order). Each process first decodes the 20 val lines (warm-up). Ours:
   seq2seq-translate's main() with Translator.translate timed; JoeyNMT: its own log line
   "Generation took ...[sec]" for the test set. BLEU and mean output length (pieces) of both
   outputs are reported too: sentences/s compare only between models that write alike.

The architectures match (recipes/translation/multi30k_en_de.yaml: bi-GRU encoder 2 x 256, GRU
decoder 2 x 512, Bahdanau attention, input feeding, bridge init, embeddings 256, dropout 0.3 where
JoeyNMT has it (tools/joeynmt_side.py refuses a recipe that drops elsewhere), batches of 1,100
padded tokens, Adam 1e-3, label smoothing 0.1, clip norm 1). JoeyNMT has no scaled dot attention;
for the fast recipe (scaled dot, no input feeding) it gets its nearest, `attention: luong`
(bilinear: q . W k, unscaled) without input feeding, and its decoder still runs one step per
target position. Differences that stay: JoeyNMT's token batches are drawn in
random order (no length bucketing: more padding, fewer sentences in 1,100 padded tokens); it drops
training pairs over 60 pieces where ours truncates them; its default initialisation (Xavier);
JoeyNMT runs fp32 on CPU (its fp16 is CUDA only), ours its recipe's training.precision
(`key.path=value` arguments override our recipes, e.g. training.precision=fp32).
Outputs, logs, models and the venv stay outside the repository (DIR, --venv). JoeyNMT's side
(its venv, its configuration, its log lines) is tools/joeynmt_side.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's seq2seq is measured, here and in the drivers

from seq2seq.cli.common import ArgumentParser, run  # noqa: E402
from seq2seq.config import Recipe, load_recipe, to_dict  # noqa: E402
from seq2seq.device import resolve_device, resolve_precision  # noqa: E402
from seq2seq.errors import UserError  # noqa: E402
from joeynmt_side import (ensure_venv, joey_config, joey_generation_seconds,  # noqa: E402
                          joey_window_rate, pieces, venv_env, write_vocab_file)

RECIPES = {"reference": ROOT / "recipes/translation/multi30k_en_de.yaml",
           "fast": ROOT / "recipes/translation/multi30k_en_de_fast.yaml"}
DEV_LINES = 20  # val lines: end-of-training validation and decoding warm-up


# ---------------------------------------------------------------- the data

def prepare_data(data_dir: Path, out: Path, src: str, tgt: str, train_lines: int, decode_lines: int) -> Path:
    """DIR/data/{train,dev,test}.{src,tgt}: the subset both sides read."""
    parts = [(name, data_dir / f"{source}.{lang}", lang, n) for name, source, n in (
        ("train", "train", train_lines), ("dev", "val", DEV_LINES), ("test", "test_2016_flickr", decode_lines))
        for lang in (src, tgt)]
    for _, path, _, _ in parts:
        if not path.is_file():
            raise UserError(f"--data-dir: {path} not found (Multi30k: train, val, test_2016_flickr .{src}/.{tgt})")
    out.mkdir(parents=True, exist_ok=True)
    for name, path, lang, n in parts:
        with open(path, encoding="utf-8") as f:
            (out / f"{name}.{lang}").write_text("".join(line for _, line in zip(range(n), f)), encoding="utf-8")
    return out


# ---------------------------------------------------------------- reading the figures

def window_rate(marks: list[tuple[float, int]], warmup: int, steps: int) -> float:
    """Target tokens/s from (end time, tokens) of each step: steps warmup+1 .. warmup+steps."""
    if len(marks) < warmup + steps:
        raise UserError(f"training ran {len(marks)} steps, fewer than --warmup + --steps = {warmup + steps}")
    window = marks[warmup:warmup + steps]
    return sum(n for _, n in window) / (window[-1][0] - marks[warmup - 1][0])


# ---------------------------------------------------------------- the two sides

def call(argv: list[str], log: Path, what: str, env: dict | None = None) -> str:
    """Run a command into its log file; its output, or a one-line error naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env).returncode
    text = log.read_text(encoding="utf-8", errors="replace")
    if code:
        last = (text.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"{what} failed (exit status {code}; see {log}): {last}")
    return text


def ours_train(recipe: Path, model_dir: Path, data: Path, overrides: list[str], log: Path, *,
               steps: int = 0, epochs: int = 1, device: str = "cpu") -> dict:
    """seq2seq-train in a subprocess, each step's end time and target tokens recorded."""
    shutil.rmtree(model_dir, ignore_errors=True)
    marks = log.with_suffix(".marks.json")
    argv = [str(recipe), "--model-dir", str(model_dir), f"data.dir={data}", "data.train=train", "data.valid=dev",
            "data.test=[test]", "training.threads=0", f"training.device={device}",
            f"training.epochs={max(epochs, steps)}", f"training.max_steps={steps}", *overrides]
    call([sys.executable, __file__, "_ours_train", str(marks), *argv], log, f"seq2seq-train {recipe.name}")
    return json.loads(marks.read_text())


def joey_train(python: Path, config: dict, path: Path, log: Path) -> str:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return call([str(python), "-m", "joeynmt", "train", str(path), "--skip-test"], log, f"JoeyNMT train {path}",
                venv_env())


def ours_decode(model_dir: Path, data: Path, src: str, out: Path, log: Path, beam: int, device: str,
                precision: str | None) -> dict:
    """seq2seq-translate in a subprocess (dev, then test), the test call of Translator.translate timed."""
    marks = log.with_suffix(".marks.json")
    extra = ["--beam-size", str(beam), "--device", device] + (["--precision", precision] if precision else [])
    call([sys.executable, __file__, "_ours_translate", str(marks), str(model_dir), str(data / f"dev.{src}"),
          str(data / f"test.{src}"), str(out), *extra], log, f"seq2seq-translate {model_dir}")
    return json.loads(marks.read_text())


def _ours_train_driver(argv: list[str]) -> int:
    """(subprocess) seq2seq-train's main() with the end time and target tokens of every step recorded."""
    import torch
    from seq2seq.cli import train as cli
    from seq2seq.trainer import Trainer
    marks, inner = [], Trainer.train_step

    def timed(self, batches):
        loss, ntok, norm = inner(self, batches)
        marks.append((time.perf_counter(), ntok))
        return loss, ntok, norm

    Trainer.train_step = timed
    code = cli.main(argv[1:])
    Path(argv[0]).write_text(json.dumps({"marks": marks, "threads": torch.get_num_threads()}))
    return code


def _ours_translate_driver(argv: list[str]) -> int:
    """(subprocess) seq2seq-translate's main() on the warm-up lines, then on the test lines, timed."""
    import torch
    from seq2seq.cli import translate as cli
    from seq2seq import Translator  # (the public name: wherever the class lives)
    marks_file, model_dir, warm, test, out, *extra = argv
    calls, inner = [], Translator.translate

    def timed(self, lines, *args, **kwargs):
        start = time.perf_counter()
        result = inner(self, lines, *args, **kwargs)
        calls.append({"lines": len(lines), "seconds": time.perf_counter() - start,
                      "precision": str(getattr(self, "precision", "fp32"))})
        return result

    Translator.translate = timed
    cli.main([model_dir, "--input", warm, "--output", f"{out}.warmup", *extra])
    cli.main([model_dir, "--input", test, "--output", out, *extra])
    Path(marks_file).write_text(json.dumps({**calls[-1], "threads": torch.get_num_threads()}))
    return 0


# ---------------------------------------------------------------- one recipe, both sides

def decode_models(name: str, recipe_path: Path, recipe: Recipe, args, data: Path, python: Path) -> dict:
    """Both models for decoding, trained --decode-epochs on the same data (kept for a rerun with
    the same settings), JoeyNMT's on ours' sentencepiece model; the paths both sides then use."""
    work = args.out / name
    ours_dir, joey_dir, stamp_file = work / "ours_model", work / "joey_model", work / "models.json"
    stamp = {"recipe": recipe_path.read_text(encoding="utf-8"), "overrides": args.overrides,
             "train_lines": args.train_lines, "epochs": args.decode_epochs, "device": args.device}
    paths = {"ours_model": ours_dir, "spm": ours_dir / "spm.model", "voc_file": work / "joey_vocab.txt",
             "joey_ckpt": joey_dir / "latest.ckpt"}
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp and \
            paths["spm"].is_file() and paths["joey_ckpt"].exists():
        print(f"vs_joeynmt: {name}: models for decoding kept from {work}", file=sys.stderr)
        return paths
    stamp_file.unlink(missing_ok=True)
    print(f"vs_joeynmt: {name}: training ours for decoding ({args.decode_epochs} epochs)", file=sys.stderr)
    ours_train(recipe_path, ours_dir, data, args.overrides, args.out / "logs" / f"{name}_ours_model.log",
               epochs=args.decode_epochs, device=args.device)
    write_vocab_file(paths["spm"], paths["voc_file"])
    print(f"vs_joeynmt: {name}: training JoeyNMT for decoding ({args.decode_epochs} epochs)", file=sys.stderr)
    config = joey_config(recipe, data=data, spm_model=paths["spm"], voc_file=paths["voc_file"],
                         model_dir=joey_dir, device=args.device, beam_size=args.beam_size,
                         epochs=args.decode_epochs)
    joey_train(python, config, work / "joey_model.yaml", args.out / "logs" / f"{name}_joey_model.log")
    stamp_file.write_text(json.dumps(stamp))
    return paths


def one_round(name: str, r: int, recipe_path: Path, recipe: Recipe, paths: dict, args, data: Path,
              python: Path) -> dict:
    """Ours, then JoeyNMT: timed training steps; then ours, then JoeyNMT: beam decoding."""
    work, logs, w, n = args.out / name, args.out / "logs", args.warmup, args.steps
    result = {}
    print(f"vs_joeynmt: round {r}: {name}: training, ours", file=sys.stderr)
    timed_dir = work / "timed_ours"
    got = ours_train(recipe_path, timed_dir, data, args.overrides, logs / f"{name}_r{r}_ours_train.log",
                     steps=w + n, device=args.device)
    result["ours_train_tok_s"] = window_rate(got["marks"], w, n)
    result["ours_tokens_per_step"] = sum(k for _, k in got["marks"][w:w + n]) / n
    result["ours_threads"] = got["threads"]
    result["ours_same_spm"] = pieces(timed_dir / "spm.model") == pieces(paths["spm"])
    shutil.rmtree(timed_dir)

    print(f"vs_joeynmt: round {r}: {name}: training, JoeyNMT", file=sys.stderr)
    timed_joey = work / "timed_joey"
    config = joey_config(recipe, data=data, spm_model=paths["spm"], voc_file=paths["voc_file"],
                         model_dir=timed_joey, device=args.device, epochs=w + n, updates=w + n,
                         logging_freq=math.gcd(w, n))
    log = joey_train(python, config, work / "joey_timed.yaml", logs / f"{name}_r{r}_joey_train.log")
    result["joey_train_tok_s"], result["joey_tokens_per_step"] = joey_window_rate(log, w, n)
    shutil.rmtree(timed_joey, ignore_errors=True)

    print(f"vs_joeynmt: round {r}: {name}: decoding, ours", file=sys.stderr)
    got = ours_decode(paths["ours_model"], data, recipe.data.src, work / "ours.test.hyp",
                      logs / f"{name}_r{r}_ours_decode.log", args.beam_size, args.device, args.precision)
    result["ours_sent_s"] = got["lines"] / got["seconds"]
    result["ours_decode_precision"] = got["precision"]

    print(f"vs_joeynmt: round {r}: {name}: decoding, JoeyNMT", file=sys.stderr)
    config = joey_config(recipe, data=data, spm_model=paths["spm"], voc_file=paths["voc_file"],
                         model_dir=paths["joey_ckpt"].parent, device=args.device, beam_size=args.beam_size,
                         load_model=paths["joey_ckpt"])
    config_file = work / "joey_decode.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    log = call([str(python), "-m", "joeynmt", "test", str(config_file), "--output-path", str(work / "joey")],
               logs / f"{name}_r{r}_joey_decode.log", f"JoeyNMT test {config_file}", venv_env())
    result["joey_sent_s"] = args.decode_lines_read / joey_generation_seconds(log)
    return result


def quality(work: Path, data: Path, recipe: Recipe, spm_model: Path) -> dict:
    """BLEU (sacreBLEU, 13a) and mean output length in pieces of both sides' test outputs."""
    import sacrebleu
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    refs = (data / f"test.{recipe.data.tgt}").read_text(encoding="utf-8").splitlines()
    found = {}
    for side, path in (("ours", work / "ours.test.hyp"), ("joey", work / "joey.test")):
        hyps = path.read_text(encoding="utf-8").splitlines()
        found[f"{side}_bleu"] = sacrebleu.corpus_bleu(hyps, [refs]).score
        found[f"{side}_mean_pieces"] = sum(map(len, sp.encode(hyps))) / max(len(hyps), 1)
    return found


# ---------------------------------------------------------------- report

FIGURES = (("training target tok/s", "train_tok_s"), ("beam decoding sent/s", "sent_s"))


def summary(rounds: list[dict]) -> dict:
    """Medians of each side's figures and of the rounds' ratios (ours / JoeyNMT, same round)."""
    out = {}
    for _, key in FIGURES:
        ours, joey = [r[f"ours_{key}"] for r in rounds], [r[f"joey_{key}"] for r in rounds]
        ratios = [a / b for a, b in zip(ours, joey)]
        out[key] = {"ours": statistics.median(ours), "joey": statistics.median(joey),
                    "ratio": statistics.median(ratios), "ratios": ratios}
    return out


def table(results: dict, beam: int) -> str:
    lines = [("recipe", "figure", "ours", "JoeyNMT", "ratio (median)", "rounds' ratios")]
    for name, res in results.items():
        for label, key in FIGURES:
            s = res["median"][key]
            lines.append((name, label.replace("beam", f"beam-{beam}"), f"{s['ours']:.1f}", f"{s['joey']:.1f}",
                          f"{s['ratio']:.2f}x", " ".join(f"{x:.2f}" for x in s["ratios"])))
        q = res["quality"]
        lines.append((name, "test BLEU (mean pieces)", f"{q['ours_bleu']:.2f} ({q['ours_mean_pieces']:.1f})",
                      f"{q['joey_bleu']:.2f} ({q['joey_mean_pieces']:.1f})", "", ""))
        p = res["precision"]
        lines.append((name, "precision (training / decoding)", f"{p['ours_training']} / {p['ours_decoding']}",
                      f"{p['joey']} / {p['joey']}", "", ""))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     .rstrip() for row in lines)


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                platform.processor())


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="key.path=value",
                   help="overrides of our recipes (both sides' models follow)")
    p.add_argument("--data-dir", type=Path, required=True, help="Multi30k: train, val, test_2016_flickr .en/.de")
    p.add_argument("--venv", type=Path, required=True, help="JoeyNMT's venv, created if missing")
    p.add_argument("--out", type=Path, required=True, help="data, models, logs and vs_joeynmt.json")
    p.add_argument("--recipes", default="reference,fast", help=f"comma-separated: {', '.join(RECIPES)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first (>= 1)")
    p.add_argument("--steps", type=int, default=60, help="timed training steps")
    p.add_argument("--train-lines", type=int, default=29000, help="first lines of train")
    p.add_argument("--decode-lines", type=int, default=1000, help="first lines of test_2016_flickr")
    p.add_argument("--decode-epochs", type=int, default=1, help="training of the models that decode")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", help="seq2seq-translate --precision (default: the recipe's)")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["_ours_train"]:
        return _ours_train_driver(argv[1:])
    if argv[:1] == ["_ours_translate"]:
        return _ours_translate_driver(argv[1:])
    args = parser().parse_args(argv)
    names = [x for x in args.recipes.split(",") if x]
    if not names or any(x not in RECIPES for x in names):
        raise UserError(f"--recipes {args.recipes!r}: give some of {', '.join(RECIPES)}")
    if min(args.rounds, args.warmup, args.steps, args.train_lines, args.decode_lines, args.decode_epochs,
           args.beam_size) < 1:
        raise UserError("--rounds, --warmup, --steps, --train-lines, --decode-lines, --decode-epochs and "
                        "--beam-size must be >= 1")
    for flag, path in (("--out", args.out), ("--venv", args.venv)):
        if path.resolve().is_relative_to(ROOT):
            raise UserError(f"{flag} {path}: inside the repository; give a folder outside it")
    args.out = args.out.resolve()
    recipes = {x: load_recipe(RECIPES[x], args.overrides) for x in names}
    device = resolve_device(args.device)
    first = recipes[names[0]]
    data = prepare_data(args.data_dir, args.out / "data", first.data.src, first.data.tgt, args.train_lines,
                        args.decode_lines)
    python = ensure_venv(args.venv.resolve())
    args.decode_lines_read = len((data / f"test.{first.data.src}").read_text(encoding="utf-8").splitlines())
    joey_threads = subprocess.run([str(python), "-c", "import torch; print(torch.get_num_threads())"],
                                  check=True, capture_output=True, text=True, env=venv_env()).stdout.strip()
    paths = {x: decode_models(x, RECIPES[x], recipes[x], args, data, python) for x in names}
    rounds: dict[str, list[dict]] = {x: [] for x in names}
    for r in range(1, args.rounds + 1):
        for x in names:
            rounds[x].append(one_round(x, r, RECIPES[x], recipes[x], paths[x], args, data, python))
    joey_precision = "fp16" if args.device == "cuda" else "fp32"  # joey_config: fp16 on CUDA
    results = {x: {"median": summary(rounds[x]), "rounds": rounds[x],
                   "quality": quality(args.out / x, data, recipes[x], paths[x]["spm"]),
                   "precision": {"ours_training": resolve_precision(recipes[x].training.precision, device),
                                 "ours_decoding": rounds[x][-1]["ours_decode_precision"],
                                 "joey": joey_precision},
                   "recipe": to_dict(recipes[x])} for x in names}
    for x in names:
        if not all(r["ours_same_spm"] for r in rounds[x]):
            print(f"warning: {x}: a timed run of ours trained a sentencepiece model unlike the one JoeyNMT "
                  "reads (figures stand; the vocabularies differ slightly)", file=sys.stderr)
    print(table(results, args.beam_size))
    report = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": {"platform": platform.platform(), "processor": cpu_name(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "joeynmt_threads": int(joey_threads)},
              "recipes": results}
    (args.out / "vs_joeynmt.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"vs_joeynmt: figures in {args.out / 'vs_joeynmt.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, sys.argv[1:])
