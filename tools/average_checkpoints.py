"""Average the weights of a model directory's last N checkpoints into one safetensors file.

    python tools/average_checkpoints.py MODEL_DIR [--last N] [--output FILE]

The average of the last few checkpoints of a run usually scores a little higher than any one of
them. Keep more than one checkpoint with training.keep_checkpoints (and training.checkpoint_every
for several per epoch). Load the result with `--weights FILE` on seq2seq-translate and
seq2seq-evaluate, or Translator.load(MODEL_DIR, weights=FILE).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from seq2seq.checkpoint import AVERAGED, CHECKPOINTS, WEIGHTS, atomic_write, list_checkpoints  # noqa: E402
from seq2seq.cli.common import run  # noqa: E402
from seq2seq.errors import UserError  # noqa: E402


def average(files: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the tensors in `files`, which must hold the same names and shapes."""
    total: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            tensors = load_file(str(f))
        except (SafetensorError, OSError) as e:
            raise UserError(f"{f}: corrupt or unreadable weights ({e})") from None
        if total and tensors.keys() != total.keys():
            raise UserError(f"{f}: holds different tensors from {files[0]}; average checkpoints of one run")
        for name, t in tensors.items():
            if name in total and t.shape != total[name].shape:
                raise UserError(f"{f}: {name} has shape {tuple(t.shape)}, not {tuple(total[name].shape)}")
            total[name] = total.get(name, 0) + t.double()
    return {name: (t / len(files)).to(torch.float32) for name, t in total.items()}


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="average_checkpoints.py", description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--last", type=int, default=2, help="how many of the newest checkpoints (default 2)")
    p.add_argument("--output", type=Path, help=f"default: MODEL_DIR/{AVERAGED}")
    args = p.parse_args(argv)
    if args.last < 1:
        raise UserError(f"--last must be at least 1, not {args.last}")
    found = list_checkpoints(args.model_dir)
    if len(found) < args.last:
        raise UserError(f"{args.model_dir / CHECKPOINTS}: {len(found)} checkpoint(s), {args.last} asked for")
    files = [c / WEIGHTS for c in found[:args.last]]
    out = args.output or args.model_dir / AVERAGED
    if out.resolve() in [f.resolve() for f in files]:
        raise UserError(f"{out}: is one of the inputs; choose another --output")
    averaged = average(files)
    atomic_write(out, lambda path: save_file(averaged, str(path), metadata={"format": "pt"}))
    print(f"averaged {', '.join(c.name for c in found[:args.last])} -> {out}")
    return 0


if __name__ == "__main__":
    run(main)
