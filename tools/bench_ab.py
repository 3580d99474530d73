"""Before and after on a shared machine: the training steps of recipe variants timed in turn,
batch by batch, so that the machine's drift (20 % and more between minutes on these 2 cores) falls
on every variant alike.

    python tools/bench_ab.py recipes/translation/multi30k_en_de.yaml --data-dir ../shared/data/multi30k \\
        --variant whole:baseline=whole_loss --steps 40
    python tools/bench_ab.py recipes/translation/multi30k_en_de.yaml --data-dir ../shared/data/multi30k \\
        --variant glibc:env.GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 --steps 40

ENTRY, `--variant NAME:key=value,...`, `baseline=NAME` and `key.path=value` are tools/bench.py's
(translation and summarisation recipes). One more key: `env.NAME=value` sets an environment
variable of that variant's process (allocator, threads), since each entry trains in a process of its
own, started and built before any timing. The parent then gives every process the same batch in
turn: in the entries' order on even batches, reversed on odd ones. After --warmup batches each step
is timed. Reported for each entry: the median step, target tokens/s over all its timed steps, the
kernel (system) time of the median step, the peak memory of its process, and, beside the first
entry, the median over the batches of its step's time over the first's: the figure to quote.

`--same-process` times variants that differ from the recipe only by a baseline that swaps a module
attribute for the step (baselines.SWAPS: torch_tanh, unfused_scores, ...) in one process, on one
model and trainer, the same batch taken by each variant in turn (so the model takes one update
per variant and batch): no two processes' heaps, caches and placement differ. Peak memory is then
the process's, one figure for all.

    python tools/bench_ab.py recipes/summarization/dialogsum.yaml --data-dir ../shared/data/dialogsum \
        --same-process --variant unfused:baseline=unfused_scores --steps 16 --warmup 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import baselines
import bench
from measure import peak_rss_mib, sync
from seq2seq.cli.common import run
from seq2seq.device import resolve_device
from seq2seq.errors import UserError


def split_env(variants: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Variant specs without their env.NAME=value keys, and those keys as one dict per variant."""
    specs, envs = [], []
    for spec in variants:
        name, sep, rest = spec.partition(":")
        keys = bench.variant_keys(rest)
        envs.append(dict(k[len("env."):].split("=", 1) for k in keys if k.startswith("env.")))
        specs.append(f"{name}{sep}{','.join(k for k in keys if not k.startswith('env.'))}")
    return specs, envs


def entries(args) -> tuple[list, list[dict[str, str]]]:
    """bench.parse_entries' entries (the recipe, then each variant) and each one's environment."""
    specs, envs = split_env(args.variant)
    found = bench.parse_entries(argparse.Namespace(**{**vars(args), "variant": specs}))
    for entry in found:
        if entry.recipe.task in bench.ROOMS:
            raise UserError(f"{entry.name}: bench_ab times translation and summarisation recipes, not "
                            f"{entry.recipe.task}")
    return found, [{}] + envs


def worker(args, index: int) -> int:
    """Build entry `index`, say "ready", then one timed step per batch index read from stdin."""
    found, envs = entries(args)
    entry = found[index]
    device = resolve_device(entry.recipe.training.device)
    if entry.recipe.training.threads:
        torch.set_num_threads(entry.recipe.training.threads)
    with tempfile.TemporaryDirectory(prefix="seq2seq-ab-") as work:
        built = bench.build_training(entry, Path(work), {}, device)
        plan = built.trainer.epoch_batches(0)
        print(json.dumps({"ready": entry.name, "env": {k: os.environ.get(k) for k in envs[index]}}), flush=True)
        for line in sys.stdin:
            indices = plan[int(line) % len(plan)]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            sync(device)
            start = time.perf_counter()
            units = built.trainer.train_step(indices)[1]
            sync(device)
            seconds = time.perf_counter() - start
            system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - before
            print(json.dumps({"seconds": seconds, "units": units, "system": system, "peak_mib": peak_rss_mib()}),
                  flush=True)
    return 0


def in_one_process(args, found: list) -> list[list[dict]]:
    """--same-process: the first entry's trainer, each variant's steps through its swap."""
    first = found[0]
    for entry in found[1:]:
        if entry.baseline not in baselines.SWAPS or entry.recipe != first.recipe:
            raise UserError(f"--same-process: variant {entry.name!r} must differ from the recipe by a baseline of "
                            f"{', '.join(baselines.SWAPS)} alone")
    device = resolve_device(first.recipe.training.device)
    if first.recipe.training.threads:
        torch.set_num_threads(first.recipe.training.threads)
    with tempfile.TemporaryDirectory(prefix="seq2seq-ab-") as work:
        trainer = bench.build_training(first, Path(work), {}, device).trainer
        losses = [trainer.batch_loss]
        for entry in found[1:]:
            swapped = argparse.Namespace(batch_loss=trainer.batch_loss)
            baselines.apply_trainer_baseline(entry.baseline, swapped)
            losses.append(swapped.batch_loss)
        plan = trainer.epoch_batches(0)

        def one_step(i: int, batch: int) -> dict:
            trainer.batch_loss = losses[i]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            sync(device)
            start = time.perf_counter()
            units = trainer.train_step(plan[batch % len(plan)])[1]
            sync(device)
            seconds = time.perf_counter() - start
            return {"seconds": seconds, "units": units, "peak_mib": peak_rss_mib(),
                    "system": resource.getrusage(resource.RUSAGE_SELF).ru_stime - before}

        return alternate(args, len(found), one_step)


def alternate(args, count: int, one_step) -> list[list[dict]]:
    """Every batch taken by each of `count` entries, in turn (reversed on odd batches): the timed
    steps of each entry, after the warm-up ones."""
    timed: list[list[dict]] = [[] for _ in range(count)]
    for batch in range(args.warmup + args.steps):
        order = range(count) if batch % 2 == 0 else reversed(range(count))
        for i in order:
            result = one_step(i, batch)
            if batch >= args.warmup:
                timed[i].append(result)
    return timed


def start(argv: list[str], index: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(index)], env={**os.environ, **env},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.ready = read(proc, f"entry {index + 1} did not start")
    return proc


def read(proc: subprocess.Popen, failure: str) -> dict:
    """The worker's next JSON line (other output it writes is passed on to stderr)."""
    for line in proc.stdout:
        if line.startswith("{"):
            return json.loads(line)
        print(line, end="", file=sys.stderr)
    raise UserError(f"{failure} (its error is above)")


def step(proc: subprocess.Popen, batch: int) -> dict:
    proc.stdin.write(f"{batch}\n")
    proc.stdin.flush()
    return read(proc, f"a worker stopped at batch {batch}")


def summary(names: list[str], timed: list[list[dict]], envs: list[dict]) -> list[dict]:
    first = [s["seconds"] for s in timed[0]]
    out = []
    for name, steps, env in zip(names, timed, envs):
        seconds = [s["seconds"] for s in steps]
        out.append({"name": name, "median_step_ms": 1000 * statistics.median(seconds),
                    "tgt_tok_s": sum(s["units"] for s in steps) / sum(seconds),
                    "system_ms": 1000 * statistics.median(s["system"] for s in steps),
                    "peak_mib": max(s["peak_mib"] for s in steps),
                    "ratio_to_first": statistics.median(np.divide(seconds, first).tolist()),
                    "steps": len(steps), "tgt_tokens": sum(s["units"] for s in steps), "env": env})
    return out


def main(argv: list[str]) -> int:
    args = parser().parse_intermixed_args(argv)
    args.overrides = [e for e in args.entries if "=" in e]
    args.entries = [e for e in args.entries if "=" not in e]
    if args.worker is not None:
        return worker(args, args.worker)
    if len(args.entries) != 1 or not args.variant:
        raise UserError("give one recipe and at least one --variant")
    if args.steps < 1 or args.warmup < 0:
        raise UserError("--steps must be >= 1 and --warmup >= 0")
    found, envs = entries(args)
    names = [e.name for e in found]
    if args.same_process:
        if any(envs):
            raise UserError("--same-process: env.NAME=value needs a process of its own")
        timed = in_one_process(args, found)
        rows = summary(names, timed, envs)
    else:
        procs = [start(argv, i, env) for i, env in enumerate(envs)]
        try:
            timed = alternate(args, len(procs), lambda i, batch: step(procs[i], batch))
        finally:
            for proc in procs:
                proc.stdin.close()
                proc.wait()
        rows = summary(names, timed, [proc.ready["env"] for proc in procs])
    print(f"{'':24s}{'median step ms':>16s}{'target tok/s':>14s}{'system ms':>11s}{'peak MiB':>10s}"
          f"{'step / first':>14s}")
    for r in rows:
        ratio = "" if r is rows[0] else f"{r['ratio_to_first']:.3f}x"
        print(f"{r['name'][:23]:24s}{r['median_step_ms']:16.1f}{r['tgt_tok_s']:14.0f}{r['system_ms']:11.1f}"
              f"{r['peak_mib']:10.0f}{ratio:>14s}")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": {"steps": args.steps, "warmup": args.warmup,
                                                            "same_process": args.same_process,
                                                            "argv": argv},
                                               "entries": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("entries", nargs="+", metavar="ENTRY", help="one YAML recipe; key.path=value applies to all")
    p.add_argument("--data-dir", help="data.dir for every entry")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                   help="the recipe with overrides, baseline=NAME, env.NAME=value (repeatable)")
    p.add_argument("--steps", type=int, default=40, help="timed steps of each entry")
    p.add_argument("--warmup", type=int, default=4, help="untimed steps of each entry first")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--same-process", action="store_true",
                   help="swap baselines only: every variant on one model in this process")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    run(main, sys.argv[1:])
