"""What tools/bench.py measures the same way for every task: timed training steps, the machine's
matmul rate in each precision (the denominator of MFU), and peak memory.

The matmul rate is the best of a few timed (n, n) @ (n, n) products after one warm-up, with the
threads torch uses for the model; the bench takes it just before and just after each variant's
timed steps, in fp32 and in bf16, since a shared machine's speed drifts.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seq2seq.device import device_kind, quantize_int8

PRECISIONS = ("fp32", "bf16")  # what training runs in; decoding also has int8
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """The machine's dense rate: the best of `repeats` timed (n, n) @ (n, n) after one warm-up."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def matmul_rates(device: torch.device, n: int) -> dict[str, float]:
    """GFLOP/s of an (n, n) matmul in each training precision: {"fp32": ..., "bf16": ...}. On a CPU
    without bf16 units bf16 is emulated (0.3 GFLOP/s on a Zen 3, 500 times slower than fp32), and
    its rate is taken at n = 256: a second there, where n = 2048 took six minutes a bench."""
    emulated = device_kind(device) == "cpu"
    return {p: matmul_gflops(device, min(n, 256) if p == "bf16" and emulated else n, DTYPES[p])
            for p in PRECISIONS}


def timed_steps(trainer, batches: list[np.ndarray], warmup: int, device: torch.device) -> dict:
    """`warmup` untimed optimizer steps (Trainer.train_step), then the rest timed: their seconds,
    steps and summed units (what each trainer's step counts: target tokens, texts, words, units)."""
    for indices in batches[:warmup]:
        trainer.train_step(indices)
    timed = batches[warmup:]
    sync(device)
    start = time.perf_counter()
    units = 0
    for indices in timed:
        units += trainer.train_step(indices)[1]
    sync(device)
    seconds = time.perf_counter() - start
    return {"train_seconds": seconds, "train_steps": len(timed), "train_steps_s": len(timed) / seconds,
            "train_units": units}


def profiled_steps(trainer, batches: list[np.ndarray], device: torch.device, top: int = 15) -> tuple[list[dict], str]:
    """Optimizer steps (Trainer.train_step) under torch.profiler, for where a step's time goes:
    the `top` operators by self time (the GPU's on CUDA, else the CPU's), each with its
    milliseconds and calls per step and its share of all operators' self time, and torch's own
    table of them. Untimed: the profiler's own cost is in these figures, so they are shares, not
    rates."""
    cuda = device.type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for indices in batches:
            trainer.train_step(indices)
        sync(device)
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    total = sum(getattr(e, attr) for e in events) or 1.0
    n = len(batches)
    ranked = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:top]
    rows = [{"op": e.key, "ms_per_step": getattr(e, attr) / 1000 / n, "calls_per_step": e.count / n,
             "share": getattr(e, attr) / total} for e in ranked]
    return rows, events.table(sort_by=attr, row_limit=top)


def model_in(model, precision: str, name: str, result: dict):
    """The model that decodes in `precision`: `model` itself, or for int8 its quantised copy
    (device.quantize_int8); the recurrent layers torch leaves in fp32 are said on stderr and kept
    in result["int8_fp32_layers"]."""
    if precision != "int8":
        return model
    quantized, left = quantize_int8(model)
    if left:
        print(f"bench: {name}: int8 leaves these in fp32: {'; '.join(left)}", file=sys.stderr)
    result["int8_fp32_layers"] = left
    for module in quantized.modules():  # a compiled step (tasks/translation/compiling.py) is the original's, bound to it
        if "step" in vars(module):
            del module.step
            print(f"bench: {name}: int8 decodes with the eager decoder step (the compiled one is the fp32 "
                  "model's)", file=sys.stderr)
    return quantized


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


def peak_memory(device: torch.device) -> dict[str, float]:
    """Peak RSS (and on CUDA peak allocated GPU memory) since reset_peak_memory, in MiB;
    peak_memory_mib is the GPU's where there is one."""
    out = {"peak_rss_mib": peak_rss_mib()}
    if device.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    out["peak_memory_mib"] = out.get("peak_gpu_mib", out["peak_rss_mib"])
    return out


def utilisation(result: dict, rates_before: dict[str, float], rates_after: dict[str, float],
                train_flops: float, precision: str) -> dict:
    """MFU and the figures it comes from: the model's FLOP/s over the mean of the matmul rates
    before and after the timed steps, in the precision the steps ran in; both precisions' rates
    are kept for the report."""
    rates = {p: (rates_before[p] + rates_after[p]) / 2 for p in PRECISIONS}
    model_rate = train_flops / result["train_seconds"] / 1e9
    return {"model_gflop_s": model_rate, "precision": precision,
            **{f"matmul_gflop_s_{p}": rates[p] for p in PRECISIONS},
            "matmul_gflop_s_before_after": [rates_before[precision], rates_after[precision]],
            "matmul_gflop_s": rates[precision], "mfu": model_rate / rates[precision]}
