"""Speed benchmark: training and inference throughput, padding, peak memory and model FLOP
utilisation (MFU) of one or more recipe variants, side by side. Translation and summarisation
recipes are measured here, the rooms' tasks (classification, language_model, tagging) by
tools/bench_tasks.py, with the same entries and variants.

    python tools/bench.py recipes/translation/multi30k_en_de.yaml --data-dir ../shared/data/multi30k \\
        --variant fast:model.decoder.input_feeding=false,model.attention.type=dot --json bench.json
    python tools/bench.py recipes/translation/multi30k_en_de.yaml --data-dir ../shared/data/multi30k \\
        training.precision=fp32 --variant bf16:training.precision=bf16 --decode-precision fp32,bf16,int8
    python tools/bench.py recipes/language_model/tinyshakespeare.yaml --data-dir ../shared/data/tinyshakespeare \\
        --variant peephole:model.decoder.cell=peephole_lstm --variant wm:model.decoder.cell=wm_lstm

ENTRY is a YAML recipe or a trained model directory (its recipe.json and vocabulary; translation
then decodes with its trained weights, otherwise with the model after the timed training steps).
`--variant NAME:key=value,...` adds the first entry with overrides (`training.compile=true` there
compiles the decoder step); one key there is the benchmark's own: `baseline=NAME` runs the
variant the slow way that a fast path replaces (tools/baselines.py: stepwise_decoder,
stepwise_output, unbucketed, torch_loss, whole_loss, ...), for before/after figures. The first column is the reference; the
others show their ratio to it. `key.path=value` arguments override every entry.

Precision: a variant trains in its training.precision (auto resolved as training resolves it,
seq2seq/device.py) and decodes, greedy and beam, in each of --decode-precision (default: its
decoding.precision): fp32, bf16 (autocast) or int8 (device.quantize_int8, CPU only). The table
names the precision of every figure that depends on one.

`--profile N` runs N more training steps (translation and summarisation recipes) under
torch.profiler after the timed ones, and lists the operators that take the most self time: where
what remains goes (shares of a step, not rates, since the profiler costs time of its own).

MFU = model FLOP/s / matmul FLOP/s, both measured in this run: the model's FLOPs are counted from
its shapes on real tokens (tools/flops.py; training = 3 x forward), the machine's rate is a dense
matmul in the precision the training steps ran in, timed just before and just after each
variant's steps (their mean), with the same threads (tools/measure.py). Both rates, fp32 and
bf16, are reported (bf16's at n = 256 on a CPU without bf16 units, where it is emulated).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from baselines import BASELINES, apply_model_baseline, apply_trainer_baseline
from bench_tasks import ROOMS, bench_task
from flops import TRAINING_FACTOR, forward_flops
from measure import (PRECISIONS, matmul_rates, model_in, peak_memory, profiled_steps,
                     reset_peak_memory, sync, timed_steps, utilisation)
from seq2seq.batch import collate
from seq2seq.checkpoint import load_meta
from seq2seq.cli.common import run
from seq2seq.config import Recipe, apply_overrides, read_yaml, recipe_from_dict, to_dict
from seq2seq.decoding import decode_ids
from seq2seq.device import resolve_decoding_precision, resolve_device
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.tasks.translation.compiling import compile_decoder_step
from seq2seq.tasks.translation.data import data_files, load_corpus
from seq2seq.tasks.translation.model import build_model
from seq2seq.tasks.translation.translator import Translator
from seq2seq.tasks.translation.validation import Validation
from seq2seq.trainer import Trainer
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
    if baseline and recipe.task in ROOMS:
        raise UserError(f"{source}: baseline={baseline} is a fast path of translation and summarisation; "
                        f"task {recipe.task!r} has no baseline")
    trained = None
    if model_dir is not None and recipe.task not in ROOMS:  # (a room's inference cost needs no trained weights)
        saved = to_dict(load_meta(model_dir)[0])
        if saved["model"] == to_dict(recipe)["model"] and saved["vocab"] == to_dict(recipe)["vocab"]:
            trained = model_dir
    return Entry(name, recipe, trained, baseline)


def variant_keys(rest: str) -> list[str]:
    """The key=value parts of a --variant after its NAME: (commas inside [a,b] stay)."""
    return [k for k in re.split(r",(?=[\w.]+=)", rest) if k]


def parse_entries(args) -> list[Entry]:
    common = list(args.overrides) + ([f"data.dir={args.data_dir}"] if args.data_dir else [])
    common += [f"training.device={args.device}"] if args.device != "auto" else []
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
        keys = variant_keys(rest)
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


# ---------------------------------------------------------------- translation and summarisation


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
    """Timed steps (measure.timed_steps) with their source tokens and real-token FLOPs."""
    result = timed_steps(trainer, batches, warmup, device)
    seconds, tgt_tokens = result["train_seconds"], result["train_units"]
    idx = np.concatenate(batches[warmup:])
    src, steps = corpus.src_lengths[idx], corpus.tgt_lengths[idx] + 1
    fwd = forward_flops(trainer.model, src, steps)
    train_flops = TRAINING_FACTOR * sum(fwd.values())
    return {**result, "train_tgt_tok_s": tgt_tokens / seconds, "train_src_tok_s": int(src.sum()) / seconds,
            "mflop_per_tgt_token": train_flops / tgt_tokens / 1e6,
            "forward_mflop_per_tgt_token": {k: v / tgt_tokens / 1e6 for k, v in fwd.items()},
            "train_flops": train_flops}


def measure_decoding(model, sources: list[list[int]], cfg, device, beam: int, precision: str) -> dict:
    # warm-up (and compilation)
    decode_ids(model, sources[:8], cfg, device, precision=precision, beam_size=beam)
    sync(device)
    start = time.perf_counter()
    hyps = decode_ids(model, sources, cfg, device, precision=precision, beam_size=beam)
    sync(device)
    seconds = time.perf_counter() - start
    steps = sum(len(h[0].tokens) + 1 for h in hyps)  # output tokens + EOS
    return {"sent_s": len(sources) / seconds, "tok_s": steps / seconds, "mean_length": steps / len(sources)}


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


@dataclass
class Built:
    """What an entry's timed training steps run: its model and Trainer, and what decoding needs."""
    model: torch.nn.Module
    trainer: Trainer
    corpus: object
    src_vocab: object
    probe: object  # a small batch, what compilation traces
    compiled: str  # "on" or "off"


def build_training(entry: Entry, work: Path, cache: dict, device: torch.device) -> Built:
    """The entry's model (seeded) and Trainer, its decoder step compiled when training.compile,
    its baseline (tools/baselines.py) applied."""
    r, cfg = entry.recipe, entry.recipe.training
    src_vocab, tgt_vocab, corpus = prepare_data(entry, work, cache)
    torch.manual_seed(cfg.seed)
    probe = collate(*corpus.pairs(corpus.usable[:4])).to(device)
    model = build_model(r.model, len(src_vocab), len(tgt_vocab), cfg.teacher_forcing).to(device).train()
    trainer = Trainer(model, r, work / "model", corpus=corpus, valid=Validation([], [], []), tgt_vocab=tgt_vocab,
                      device=device)
    compiled = compile_decoder_step(model, probe, device, trainer.precision) if cfg.compile else "off"
    if entry.baseline:
        apply_model_baseline(entry.baseline, model)
        apply_trainer_baseline(entry.baseline, trainer)
    return Built(model, trainer, corpus, src_vocab, probe, compiled)


def bench_seq2seq(entry: Entry, args, work: Path, cache: dict, device: torch.device) -> dict:
    r = entry.recipe
    reset_peak_memory(device)
    built = build_training(entry, work, cache, device)
    model, trainer, corpus, src_vocab = built.model, built.trainer, built.corpus, built.src_vocab
    precision = trainer.precision  # training.precision resolved: what the steps run in
    result = {"name": entry.name, "task": r.task, "device": str(device), "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "trained_model": str(entry.trained) if entry.trained else None,
              "compile": built.compiled, "baseline": entry.baseline or "-"}
    plan = trainer.epoch_batches(0)
    result.update(padding(plan, corpus))
    batches = [plan[i % len(plan)] for i in range(args.warmup + args.steps)]

    n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    before = matmul_rates(device, n)
    print(f"bench: {entry.name}: training {args.warmup} + {args.steps} steps on {device} in {precision}",
          file=sys.stderr)
    result.update(measure_training(trainer, corpus, batches, args.warmup, device))
    result.update(utilisation(result, before, matmul_rates(device, n), result.pop("train_flops"), precision))
    if args.profile:  # after the timed steps and rates, so that it changes none of them
        profiled = [batches[args.warmup + i % args.steps] for i in range(args.profile)]
        result["profile"], text = profiled_steps(trainer, profiled, device)
        print(f"bench: {entry.name}: {args.profile} training steps under torch.profiler, operators by self "
              f"{'GPU' if device.type == 'cuda' else 'CPU'} time:\n{text}", file=sys.stderr)
    trainer.optimizer.zero_grad(set_to_none=True)

    if args.decode_sentences > 0:
        split = r.data.test[-1] if r.data.test else r.data.valid
        lines = read_lines(data_files(r, split)[0])[:args.decode_sentences]
        decoder = model
        if entry.trained:
            decoder = Translator.load(entry.trained, str(device), precision="fp32").model  # (int8: below)
            if result["compile"] == "on":
                compile_decoder_step(decoder, built.probe, device, precision)
        result["decode_split"], result["decode_sentences"] = split, len(lines)
        sources = src_vocab.encode(lines)
        result["decode_precisions"] = decode_precisions(r, args, device)
        for p in result["decode_precisions"]:
            searched = model_in(decoder, p, entry.name, result)
            for label, beam in (("greedy", 1), (f"beam{args.beam_size}", args.beam_size)):
                print(f"bench: {entry.name}: decoding {len(lines)} sentences, {label}, {p}", file=sys.stderr)
                for k, v in measure_decoding(searched, sources, r.decoding, device, beam, p).items():
                    result[f"{label}_{k}_{p}"] = v
    result.update(peak_memory(device))
    del trainer, model
    return result


def decode_precisions(recipe: Recipe, args, device: torch.device) -> list[str]:
    """The precisions a variant decodes in: --decode-precision's, else its decoding.precision;
    each resolved (seq2seq/device.py: auto by the device, int8 on the CPU only)."""
    if args.decode_precision:
        names, source = args.decode_precision.split(","), "--decode-precision"
    else:
        names, source = [recipe.decoding.precision], "decoding.precision"
    return list(dict.fromkeys(resolve_decoding_precision(n.strip(), device, source) for n in names))


def bench_entry(entry: Entry, args, work: Path, cache: dict) -> dict:
    """Every figure of one entry: translation and summarisation here, the rooms' tasks in bench_tasks.py."""
    cfg = entry.recipe.training
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gc.collect()
    if entry.recipe.task in ROOMS:
        precisions = decode_precisions(entry.recipe, args, device)
        result = bench_task(entry.name, entry.recipe, args, work, device, precisions)
    else:
        result = bench_seq2seq(entry, args, work, cache, device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ---------------------------------------------------------------- report

def decoding_rows(precision: str, beam: int) -> list[tuple[str, str, str]]:
    """The rows of one decoding precision: translation's searches and the rooms' inference."""
    out = []
    for label in ("greedy", f"beam{beam}"):
        out += [(f"{label} sent/s {precision}", f"{label}_sent_s_{precision}", "{:.1f}"),
                (f"{label} tok/s {precision}", f"{label}_tok_s_{precision}", "{:.0f}"),
                (f"{label} mean length {precision}", f"{label}_mean_length_{precision}", "{:.1f}")]
    return out + [(f"inference texts/s {precision}", f"infer_texts_s_{precision}", "{:.1f}"),
                  (f"inference tok/s {precision}", f"infer_tok_s_{precision}", "{:.0f}"),
                  (f"generate units/s {precision}", f"generate_units_s_{precision}", "{:.1f}"),
                  (f"score chars/s {precision}", f"score_chars_s_{precision}", "{:.0f}")]


def rows(results: list[dict], beam: int) -> list[tuple[str, str, str]]:
    """(label, result key, format) of the table: those of the figures some result has."""
    decoded = dict.fromkeys(p for r in results for p in r.get("decode_precisions", []))
    every = [("task", "task", "{}"),
             ("training precision", "precision", "{}"),
             ("train target tok/s", "train_tgt_tok_s", "{:.0f}"),
             ("train source tok/s", "train_src_tok_s", "{:.0f}"),
             ("train tok/s (pieces, words or units)", "train_tok_s", "{:.0f}"),
             ("train texts/s (sentences)", "train_texts_s", "{:.1f}"),
             ("train steps/s", "train_steps_s", "{:.2f}"),
             ("train MFLOP / target token", "mflop_per_tgt_token", "{:.3g}"),
             ("train MFLOP / token", "mflop_per_token", "{:.3g}"),
             ("model GFLOP/s", "model_gflop_s", "{:.2f}"),
             *[(f"matmul GFLOP/s {p}", f"matmul_gflop_s_{p}", "{:.1f}") for p in PRECISIONS],
             ("MFU % (of the training precision's matmul)", "mfu", "{:.1%}"),
             ("padding src % (pad / real)", "padding_src", "{:.1%}"),
             ("padding tgt % (pad / real)", "padding_tgt", "{:.1%}"),
             ("sentences / batch", "sentences_per_batch", "{:.1f}"),
             *[row for p in decoded for row in decoding_rows(p, beam)],
             ("peak memory MiB", "peak_memory_mib", "{:.0f}"),
             ("parameters (M)", "parameters", "{:.2f}"),
             ("compile", "compile", "{}"),
             ("baseline (slow path)", "baseline", "{}")]
    return [row for row in every if any(row[1] in r for r in results)]


BREAKDOWNS = {"forward_mflop_per_tgt_token": "forward MFLOP / target token:",
              "forward_mflop_per_token": "forward MFLOP / token:"}


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
    lines += [[label, *[cell(r, key, fmt, base) for r in results]] for label, key, fmt in rows(results, beam)]
    for key, title in BREAKDOWNS.items():
        components = list(dict.fromkeys(c for r in results for c in r.get(key, {})))
        if components:
            lines.append([title, *[""] * len(results)])
            lines += [[f"  {c}", *[f"{r[key][c]:.3g}" if c in r.get(key, {}) else "-" for r in results]]
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
                   help="first sentences (texts, lines) of the recipe's last test split, else of its valid "
                        "split, for decoding (inference); 0: skip it")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after the timed steps, N more training steps under torch.profiler: the operators "
                        "that take the most self time, on stderr and in --json (0: none)")
    p.add_argument("--decode-precision", metavar="P,...",
                   help="decode in each of these (auto, fp32, bf16, int8); default: each entry's decoding.precision")
    p.add_argument("--generate-units", type=int, default=200,
                   help="language models: units generated greedily for the generation rate")
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
    if min(args.steps, args.beam_size, args.generate_units) < 1 or min(args.warmup, args.decode_sentences,
                                                                        args.profile) < 0:
        raise UserError("--steps, --beam-size and --generate-units must be >= 1, --warmup, --decode-sentences "
                        "and --profile >= 0")
    entries = parse_entries(args)
    for e in entries:  # devices and precisions that cannot be had: said before any work
        decode_precisions(e.recipe, args, resolve_device(e.recipe.training.device))
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
                                                    "decode_precision", "generate_units", "device", "profile",
                                                    "matmul_size", "overrides", "variant", "data_dir")},
        "variants": [{**r, "recipe": to_dict(e.recipe)} for r, e in zip(results, entries)],
        "ratios": {r["name"]: {k: r[k] / base[k] for _, k, _ in rows(results, args.beam_size)
                               if isinstance(base.get(k), (int, float)) and not isinstance(base[k], bool)
                               and base[k] and k in r}
                   for r in results[1:]},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    run(main, sys.argv[1:])
