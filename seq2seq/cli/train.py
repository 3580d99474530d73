"""seq2seq-train RECIPE --model-dir DIR [key.path=value ...] [--resume | --overwrite]

Data-parallel on N GPUs or CPU processes: torchrun --nproc-per-node N -m seq2seq.cli.train ...
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from seq2seq.cli.common import ArgumentParser, run


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-train", description="Train a model from a YAML recipe.")
    p.add_argument("recipe", help="YAML recipe file")
    p.add_argument("overrides", nargs="*", help="recipe values as key.path=value")
    p.add_argument("--model-dir", required=True, help="where the model directory is written")
    p.add_argument("--resume", action="store_true", help="continue the run in --model-dir")
    p.add_argument("--overwrite", action="store_true", help="replace the model in --model-dir")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv) -> int:
    args = parser().parse_intermixed_args(argv)
    from seq2seq.config import load_recipe
    from seq2seq.experiment import train
    from seq2seq.distributed import teardown
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks
    recipe = load_recipe(args.recipe, args.overrides,
                         warn=(lambda note: print(f"warning: {note}", file=sys.stderr)) if main_process else None)
    try:
        trainer = train(recipe, Path(args.model_dir), resume=args.resume, overwrite=args.overwrite)
    finally:
        teardown()
    if not trainer.world.is_main:
        return 0
    p = trainer.progress
    skipped = f"; {p.skipped_steps} steps skipped (non-finite)" if p.skipped_steps else ""
    if trainer.interrupted:
        again = ["seq2seq-train", args.recipe, "--model-dir", args.model_dir, *args.overrides, "--resume"]
        print(f"interrupted at step {p.step} ({trainer.interrupted}); last checkpoint "
              f"{trainer.last_checkpoint}{skipped}; resume with: {shlex.join(again)}")
        return 0
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    rate = trainer.train_tokens / max(trainer.train_seconds, 1e-9)
    print(f"done: {p.step} steps; training {trainer.train_seconds / 60:.1f} min at {rate:.0f} target "
          f"tokens/s; peak memory {peak:.2f} GiB; best validation {trainer.metric.name} "
          f"{p.best_score:.2f}{skipped}; "
          f"model in {args.model_dir}")
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
