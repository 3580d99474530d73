"""The encoders' packed training, seq2seq's loop against torch's (seq2seq/modules/packed_training.py):
one bidirectional layer, forward and backward over a packed batch, both ways alternated in one
process, the median of the per-round ratios.

    python tools/bench_packed.py                       # the README's table: GRU and LSTM, fp32 and bf16
    python tools/bench_packed.py --shapes 28x320 --cells gru --precisions bf16 --rounds 9

Lengths are uniform between half the longest and the longest (the longest once), seed 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seq2seq.modules import RNN_CELLS


def one_pass(rnn, x: torch.Tensor, lengths: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out, final = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    final = final[0] if isinstance(final, tuple) else final
    (out.data.float().sum() + final.float().sum()).backward()
    return time.perf_counter() - start


def measure(cell: str, batch: int, longest: int, bf16: bool, size: int, rounds: int) -> dict:
    torch.manual_seed(0)
    lengths = torch.randint(longest // 2, longest + 1, (batch,))
    lengths[0] = longest
    x = torch.randn(batch, longest, size, requires_grad=True)
    rnn = RNN_CELLS[cell](size, size, batch_first=True, bidirectional=True)
    times = {"loop": [], "torch": []}
    for _ in range(rounds + 1):  # the first round warms up
        for way in times:
            rnn.packed_on_loop = way == "loop"
            times[way].append(one_pass(rnn, x, lengths, bf16))
    loop, theirs = times["loop"][1:], times["torch"][1:]
    return {"loop_ms": 1000 * statistics.median(loop), "torch_ms": 1000 * statistics.median(theirs),
            "ratio": statistics.median(b / a for a, b in zip(loop, theirs))}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="300x20,28x320", help="BATCHxLONGEST,...")
    ap.add_argument("--cells", default="gru,lstm")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--size", type=int, default=128, help="input and hidden size")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    print("| cell | precision | batch x longest | loop ms | torch's ms | loop's speed-up |")
    print("|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        for precision in args.precisions.split(","):
            for shape in args.shapes.split(","):
                batch, longest = (int(v) for v in shape.split("x"))
                r = measure(cell, batch, longest, precision == "bf16", args.size, args.rounds)
                print(f"| {cell} | {precision} | {batch} x {longest} | {r['loop_ms']:.0f} | {r['torch_ms']:.0f} "
                      f"| {r['ratio']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
