"""Speed benchmark: training and decoding throughput, padding, peak memory and model FLOP
utilisation (MFU) of one or more recipe variants, side by side.

    python tools/bench.py recipes/translation/multi30k_en_de.yaml --data-dir ../shared/data/multi30k \\
        --variant fast:model.decoder.input_feeding=false,model.attention.type=dot --json bench.json

ENTRY is a YAML recipe or a trained model directory (its recipe.json and vocabulary; decoding then
uses its trained weights, otherwise the model after the timed training steps). `--variant
NAME:key=value,...` adds the first entry with overrides (`training.compile=true` there compiles
the decoder step); one key there is the benchmark's own: `baseline=NAME` runs the variant the slow
way that a fast path replaces (tools/baselines.py: stepwise_decoder, stepwise_output, unbucketed),
for before/after figures. The first column is the reference; the others show their
ratio to it. `key.path=value` arguments override every entry.

MFU = model FLOP/s / matmul FLOP/s, both measured in this run: the model's FLOPs are counted from
its shapes on real tokens (tools/flops.py; training = 3 x forward), the machine's rate is a dense
matmul timed just before and just after each variant's training steps (their mean), with the same
threads and dtype.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from baselines import BASELINES, apply_model_baseline, apply_trainer_baseline
from flops import TRAINING_FACTOR, forward_flops, matmul_gflops, sync
from seq2seq.checkpoint import load_meta
from seq2seq.cli.common import run
from seq2seq.compiling import compile_decoder_step
from seq2seq.config import Recipe, apply_overrides, read_yaml, recipe_from_dict, to_dict
from seq2seq.batch import collate
from seq2seq.data import load_corpus, read_lines
from seq2seq.decoding import decode_ids
from seq2seq.device import autocast, resolve_device
from seq2seq.errors import UserError
from seq2seq.experiment import data_files
from seq2seq.model import build_model
from seq2seq.trainer import Trainer
from seq2seq.validation import Validation
from seq2seq.translator import Translator
from seq2seq.vocab import build_vocabs, load_vocabs


@dataclass
class Entry:
    name: str
    recipe: Recipe
    trained: Path | None  # model directory whose weights and vocabulary fit this recipe
    baseline: str | None = None  # tools/baselines.py


def _base(source: str) -> tuple[dict, Path | None]:
    """The raw recipe of a YAML file or of a model directory (then also the directory)."""
    path = Path(source)
    if path.is_dir():
        return to_dict(load_meta(path)[0]), path
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe must be a mapping of sections")
    return raw, None


def _entry(name: str, raw: dict, model_dir: Path | None, overrides: list[str], source: str,
           baseline: str | None = None) -> Entry:
    recipe = recipe_from_dict(apply_overrides(copy.deepcopy(raw), overrides), source)
    trained = None
    if model_dir is not None:
        saved = to_dict(load_meta(model_dir)[0])
        if saved["model"] == to_dict(recipe)["model"] and saved["vocab"] == to_dict(recipe)["vocab"]:
            trained = model_dir
    return Entry(name, recipe, trained, baseline)


def parse_entries(args) -> list[Entry]:
    common = list(args.overrides) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    entries, bases = [], []
    for source in args.entries:
        raw, model_dir = _base(source)
        bases.append((raw, model_dir, source))
        name = Path(source).name if model_dir else str(raw.get("name", Path(source).stem))
        entries.append(_entry(name, raw, model_dir, common, source))
    for spec in args.variant:
        name, sep, rest = spec.partition(":")
        if not sep or not name:
            raise UserError(f"--variant {spec!r}: expected NAME:key.path=value,...")
        keys = [k for k in re.split(r",(?=[\w.]+=)", rest) if k]  # commas inside [a,b] stay
        baseline = None
        for k in [k for k in keys if k.startswith("baseline=")]:
            baseline = k.partition("=")[2]
            if baseline not in BASELINES:
                raise UserError(f"--variant {spec!r}: baseline must be one of {', '.join(BASELINES)}")
            keys.remove(k)
        raw, model_dir, source = bases[0]
        entries.append(_entry(name, raw, model_dir, common + keys, f"{source} (variant {name})", baseline))
    names = [e.name for e in entries]
    for i, e in enumerate(entries):
        if names.count(e.name) > 1:
            e.name = f"{e.name}#{i + 1}"
    return entries


# ---------------------------------------------------------------- measurements


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:  # Linux: resets VmHWM, so each variant reports its own peak RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 2 ** 20 if sys.platform == "darwin" else 2 ** 10  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def padding(plan: list[np.ndarray], corpus) -> dict[str, float]:
    """Padding positions per real token over a whole epoch's batch plan (0.05: 5 % extra)."""
    src = [corpus.src_lengths[b] for b in plan]
    tgt = [corpus.tgt_lengths[b] + 1 for b in plan]  # target + EOS (or BOS)

    def extra(lengths: list[np.ndarray]) -> float:
        real = sum(int(x.sum()) for x in lengths)
        return sum(len(x) * int(x.max()) for x in lengths) / real - 1.0

    return {"padding_src": extra(src), "padding_tgt": extra(tgt), "batches_per_epoch": len(plan),
            "sentences_per_batch": sum(map(len, plan)) / len(plan)}


def measure_training(trainer, corpus, batches: list[np.ndarray], warmup: int, device) -> dict:
    """Warm-up steps, then timed optimizer steps (Trainer.train_step) with their real-token FLOPs."""
    for indices in batches[:warmup]:
        trainer.train_step(indices)
    timed = batches[warmup:]
    sync(device)
    start = time.perf_counter()
    tgt_tokens = 0
    for indices in timed:
        tgt_tokens += trainer.train_step(indices)[1]
    sync(device)
    seconds = time.perf_counter() - start
    idx = np.concatenate(timed)
    src, steps = corpus.src_lengths[idx], corpus.tgt_lengths[idx] + 1
    fwd = forward_flops(trainer.model, src, steps)
    train_flops = TRAINING_FACTOR * sum(fwd.values())
    return {"train_seconds": seconds, "train_steps": len(timed),
            "train_tgt_tok_s": tgt_tokens / seconds, "train_src_tok_s": int(src.sum()) / seconds,
            "mflop_per_tgt_token": train_flops / tgt_tokens / 1e6,
            "forward_mflop_per_tgt_token": {k: v / tgt_tokens / 1e6 for k, v in fwd.items()},
            "model_gflop_s": train_flops / seconds / 1e9}


def measure_decoding(model, sources: list[list[int]], cfg, device, beam: int, *, autocast_on: bool) -> dict:
    # warm-up (and compilation)
    decode_ids(model, sources[:8], cfg, device, autocast_on=autocast_on, beam_size=beam)
    sync(device)
    start = time.perf_counter()
    hyps = decode_ids(model, sources, cfg, device, autocast_on=autocast_on, beam_size=beam)
    sync(device)
    seconds = time.perf_counter() - start
    steps = sum(len(h[0].tokens) + 1 for h in hyps)  # output tokens + EOS
    return {"sent_s": len(sources) / seconds, "tok_s": steps / seconds, "mean_length": steps / len(sources)}


# ---------------------------------------------------------------- one variant


def prepare_data(entry: Entry, work: Path, cache: dict):
    """Vocabularies (the trained model's, or trained here) and the tokenised training corpus."""
    r = entry.recipe
    key = json.dumps([to_dict(r)["vocab"], to_dict(r)["data"], str(entry.trained)], sort_keys=True)
    if key not in cache:
        train_src, train_tgt = data_files(r, r.data.train)
        if entry.trained:
            vocabs = load_vocabs(entry.trained, r.vocab.joint)
        else:
            vocabs = build_vocabs(train_src, train_tgt, work / f"vocab{len(cache)}", r.vocab)
        cache[key] = (*vocabs, load_corpus(train_src, train_tgt, *vocabs, r.data))
    return cache[key]


def bench_entry(entry: Entry, args, work: Path, cache: dict) -> dict:
    r, cfg = entry.recipe, entry.recipe.training
    device = resolve_device(args.device if args.device != "auto" else cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    src_vocab, tgt_vocab, corpus = prepare_data(entry, work, cache)
    gc.collect()
    reset_peak_memory(device)
    torch.manual_seed(cfg.seed)
    probe = collate(*corpus.pairs(corpus.usable[:4])).to(device)
    model = build_model(r.model, len(src_vocab), len(tgt_vocab), cfg.teacher_forcing).to(device).train()
    result = {"name": entry.name, "device": str(device), "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "trained_model": str(entry.trained) if entry.trained else None,
              "compile": compile_decoder_step(model, probe, device, cfg.autocast) if cfg.compile else "off",
              "baseline": entry.baseline or "-"}
    if entry.baseline:
        apply_model_baseline(entry.baseline, model)
    trainer = Trainer(model, r, work / "model", corpus=corpus, valid=Validation([], [], []), tgt_vocab=tgt_vocab,
                      device=device)
    if entry.baseline:
        apply_trainer_baseline(entry.baseline, trainer)
    plan = trainer.epoch_batches(0)
    result.update(padding(plan, corpus))
    batches = [plan[i % len(plan)] for i in range(args.warmup + args.steps)]

    bf16 = device.type == "cuda" and cfg.autocast
    n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    result["matmul_dtype"] = "bf16" if bf16 else "fp32"
    dtype = torch.bfloat16 if bf16 else torch.float32
    before = matmul_gflops(device, n, dtype)
    print(f"bench: {entry.name}: training {args.warmup} + {args.steps} steps on {device}", file=sys.stderr)
    result.update(measure_training(trainer, corpus, batches, args.warmup, device))
    after = matmul_gflops(device, n, dtype)
    # the machine's rate on both sides of the timed steps: a shared machine's speed drifts
    result["matmul_gflop_s_before_after"] = [before, after]
    result["matmul_gflop_s"] = (before + after) / 2
    result["mfu"] = result["model_gflop_s"] / result["matmul_gflop_s"]
    trainer.optimizer.zero_grad(set_to_none=True)

    if args.decode_sentences > 0:
        split = r.data.test[-1] if r.data.test else r.data.valid
        lines = read_lines(data_files(r, split)[0])[:args.decode_sentences]
        decoder = model
        if entry.trained:
            decoder = Translator.load(entry.trained, str(device)).model
            if result["compile"] == "on":
                compile_decoder_step(decoder, probe, device, cfg.autocast)
        result["decode_split"], result["decode_sentences"] = split, len(lines)
        for label, beam in (("greedy", 1), (f"beam{args.beam_size}", args.beam_size)):
            print(f"bench: {entry.name}: decoding {len(lines)} sentences, {label}", file=sys.stderr)
            for k, v in measure_decoding(decoder, src_vocab.encode(lines), r.decoding, device, beam,
                                             autocast_on=cfg.autocast).items():
                result[f"{label}_{k}"] = v
    result["peak_rss_mib"] = peak_rss_mib()
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    result["peak_memory_mib"] = result.get("peak_gpu_mib", result["peak_rss_mib"])
    del trainer, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ---------------------------------------------------------------- report

def rows(beam: int) -> list[tuple[str, str, str]]:
    """(label, result key, format) of the table."""
    b = f"beam{beam}"
    return [("train target tok/s", "train_tgt_tok_s", "{:.0f}"),
            ("train source tok/s", "train_src_tok_s", "{:.0f}"),
            ("train MFLOP / target token", "mflop_per_tgt_token", "{:.3g}"),
            ("model GFLOP/s", "model_gflop_s", "{:.2f}"),
            ("matmul GFLOP/s", "matmul_gflop_s", "{:.1f}"),
            ("MFU %", "mfu", "{:.1%}"),
            ("padding src % (pad / real)", "padding_src", "{:.1%}"),
            ("padding tgt % (pad / real)", "padding_tgt", "{:.1%}"),
            ("sentences / batch", "sentences_per_batch", "{:.1f}"),
            ("greedy sent/s", "greedy_sent_s", "{:.1f}"),
            ("greedy tok/s", "greedy_tok_s", "{:.0f}"),
            ("greedy mean length", "greedy_mean_length", "{:.1f}"),
            (f"{b} sent/s", f"{b}_sent_s", "{:.1f}"),
            (f"{b} tok/s", f"{b}_tok_s", "{:.0f}"),
            (f"{b} mean length", f"{b}_mean_length", "{:.1f}"),
            ("peak memory MiB", "peak_memory_mib", "{:.0f}"),
            ("parameters (M)", "parameters", "{:.2f}"),
            ("compile", "compile", "{}"),
            ("baseline (slow path)", "baseline", "{}")]


def table(results: list[dict], beam: int) -> str:
    def cell(r: dict, key: str, fmt: str, base: dict) -> str:
        if key not in r:
            return "-"
        value = r[key] / 1e6 if key == "parameters" else r[key]
        text = fmt.format(value)
        if r is not base and isinstance(value, float) and base.get(key):
            text += f" ({r[key] / base[key]:.2f}x)"
        return text

    base = results[0]
    lines = [["", *[r["name"] for r in results]]]
    lines += [[label, *[cell(r, key, fmt, base) for r in results]] for label, key, fmt in rows(beam)]
    components = list(dict.fromkeys(k for r in results for k in r["forward_mflop_per_tgt_token"]))
    lines.append(["forward MFLOP / target token:", *[""] * len(results)])
    lines += [[f"  {c}", *[f"{r['forward_mflop_per_tgt_token'].get(c, 0.0):.3g}" for r in results]]
              for c in components]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(line, widths))).rstrip() for line in lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("entries", nargs="+", metavar="ENTRY",
                   help="YAML recipe or trained model directory; key.path=value applies to all")
    p.add_argument("--data-dir", help="data.dir for every entry")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                   help="the first entry with overrides (repeatable)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    p.add_argument("--decode-sentences", type=int, default=200,
                   help="first sentences of the recipe's last test split; 0: skip decoding")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: each recipe's training.device")
    p.add_argument("--matmul-size", type=int, default=0,
                   help="n of the reference (n, n) matmul; 0: 2048 on CPU, 8192 on GPU")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv) -> int:
    args = parser().parse_intermixed_args(argv)
    args.overrides = [e for e in args.entries if "=" in e]
    args.entries = [e for e in args.entries if "=" not in e]
    if not args.entries:
        raise UserError("give at least one recipe or model directory")
    if args.steps < 1 or args.warmup < 0 or args.decode_sentences < 0 or args.beam_size < 1:
        raise UserError("--steps and --beam-size must be >= 1, --warmup and --decode-sentences >= 0")
    entries = parse_entries(args)
    old_cache = datasets.config.HF_DATASETS_CACHE
    try:
        with tempfile.TemporaryDirectory(prefix="seq2seq-bench-") as work:
            datasets.config.HF_DATASETS_CACHE = str(Path(work) / "hf_datasets")  # not ~/.cache
            cache: dict = {}
            results = [bench_entry(e, args, Path(work), cache) for e in entries]
    finally:
        datasets.config.HF_DATASETS_CACHE = old_cache
    print(table(results, args.beam_size))
    base = results[0]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "cuda": torch.cuda.get_device_name() if
                    torch.cuda.is_available() else None, "cudnn": torch.backends.cudnn.version() if
                    torch.cuda.is_available() else None},
        "settings": {k: getattr(args, k) for k in ("steps", "warmup", "decode_sentences", "beam_size",
                                                    "device", "matmul_size", "overrides",
                                                    "variant", "data_dir")},
        "variants": [{**r, "recipe": to_dict(e.recipe)} for r, e in zip(results, entries)],
        "ratios": {r["name"]: {k: r[k] / base[k] for _, k, _ in rows(args.beam_size)
                               if isinstance(base.get(k), (int, float)) and base[k] and k in r}
                   for r in results[1:]},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    run(main, sys.argv[1:])
