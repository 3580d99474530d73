"""seq2seq-train RECIPE --model-dir DIR [key.path=value ...] [--resume | --overwrite] [--init-from MODEL_DIR]
seq2seq-train RECIPE [key.path=value ...] --print KEY      (a resolved value, for scripts)

Data-parallel on N GPUs or CPU processes: torchrun --nproc-per-node N -m seq2seq.cli.train ...
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from seq2seq.cli.common import ArgumentParser, run
from seq2seq.errors import UserError


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-train", description="Train a model from a YAML recipe.")
    p.add_argument("recipe", help="YAML recipe file")
    p.add_argument("overrides", nargs="*", help="recipe values as key.path=value")
    p.add_argument("--model-dir", help="where the model directory is written (required to train)")
    p.add_argument("--resume", action="store_true", help="continue the run in --model-dir")
    p.add_argument("--overwrite", action="store_true", help="replace the model in --model-dir")
    p.add_argument("--init-from", metavar="MODEL_DIR",
                   help="start from another run's weights (its best.safetensors) and vocabulary, with a "
                        "fresh optimizer, step counter and schedule; the recipes' model and vocab sections "
                        "must match, but for dropouts, init and added coverage or copy weights")
    p.add_argument("--print", metavar="KEY", dest="print_keys", action="append",
                   help="print the resolved recipe value at KEY (a list one item a line, a section "
                        "as JSON; repeat for more, in order) and exit without training, e.g. "
                        "--print data.test")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def show(value) -> str:
    """A recipe value as scripts read it: list items one a line, sections as JSON, YAML's booleans."""
    if isinstance(value, (list, tuple)):
        return "".join(f"{item}\n" for item in value)
    if isinstance(value, dict):
        return json.dumps(value) + "\n"
    if isinstance(value, bool):
        return "true\n" if value else "false\n"
    return f"{value}\n"


LOCK = ".train.lock"  # in the model directory: the pid of the seq2seq-train writing it


def check_not_foreign(model_dir: Path) -> None:
    """Training writes (and --overwrite deletes) its files and its checkpoints folder by name; in
    a folder without a model's meta.json such files and folders belong to someone else: refuse
    before anything is touched. (Read-only: every rank checks before any rank writes.)"""
    from seq2seq.checkpoint import CHECKPOINTS, META, WRITTEN_BY_TRAINING
    if not model_dir.is_dir() or (model_dir / META).exists():
        return
    theirs = [name for name in WRITTEN_BY_TRAINING
              if ((model_dir / name).is_dir() if name == CHECKPOINTS else (model_dir / name).is_file())]
    if theirs:
        raise UserError(f"{model_dir}: holds {', '.join(theirs)} but no {META}, so it is not a seq2seq "
                        "model directory and training would overwrite them; move them or choose "
                        "another --model-dir")


# restored from the checkpoint by --resume (optimizer state, scheduler state, RNG states)
KEPT_BY_RESUME = ("optimizer", "lr", "weight_decay", "momentum", "scheduler", "plateau_factor",
                  "plateau_patience", "min_lr", "seed")


def check_resume_keeps(recipe, model_dir: Path) -> None:
    """--resume continues the saved optimizer, schedule and random state: a new value for what
    they hold would be lost, so it is refused (other training values apply from the resume on)."""
    from seq2seq.checkpoint import META, load_meta
    if not (model_dir / META).exists():
        return  # train() says what is missing
    saved = load_meta(model_dir)[0].training
    changed = [f"training.{key}: {getattr(recipe.training, key)!r} (the run has {getattr(saved, key)!r})"
               for key in KEPT_BY_RESUME if getattr(recipe.training, key) != getattr(saved, key)]
    if changed:
        raise UserError(f"{model_dir}: --resume continues the run's saved optimizer, schedule and random "
                        f"state, so it cannot take {'; '.join(changed)}; resume with the run's values or "
                        "start again with --overwrite")


@contextlib.contextmanager
def training_lock(model_dir: Path):
    """One seq2seq-train at a time per model directory (a second one, even with --overwrite,
    would write under the first): an exclusive flock on MODEL_DIR/.train.lock, released by the
    OS when the process ends, however it ends. The file stays (removing it would let a later run
    lock a file another still holds open), but a directory made just for it goes if the run
    leaves nothing else there."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    if model_dir.exists() and not model_dir.is_dir():
        yield  # train() says what is wrong
        return
    created = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(model_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise UserError(f"{model_dir}: another seq2seq-train (pid {owner}) is writing this model "
                            "directory; wait for it to end or choose another --model-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            if created and os.listdir(model_dir) == [LOCK]:
                shutil.rmtree(model_dir, ignore_errors=True)
    finally:
        os.close(fd)


def main(argv) -> int:
    p = parser()
    args = p.parse_intermixed_args(argv)
    from seq2seq.config import load_recipe, recipe_value
    if args.print_keys:
        recipe = load_recipe(args.recipe, args.overrides)
        try:
            text = "".join(show(recipe_value(recipe, key)) for key in args.print_keys)
        except UserError as e:
            raise UserError(f"--print {e}") from None
        sys.stdout.write(text)
        return 0
    if args.model_dir is None:
        p.error("the following arguments are required: --model-dir")
    if not args.model_dir.strip():
        raise UserError("--model-dir: an empty path (an unset shell variable?)")
    if args.init_from is not None and not args.init_from.strip():
        raise UserError("--init-from: an empty path (an unset shell variable?)")
    from seq2seq.tasks import train
    from seq2seq.distributed import teardown
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks
    recipe = load_recipe(args.recipe, args.overrides,
                         warn=(lambda note: print(f"warning: {note}", file=sys.stderr)) if main_process else None)
    if recipe.training.last_phase and main_process:
        print(f"note: training.last_phase: {len(recipe.training.last_phase)} overrides for a last phase that the "
              "recipe script trains after this run (seq2seq-train RECIPE --init-from THIS_RUN KEY=VALUE ...); "
              "this command trains the first phase only", file=sys.stderr)
    model_dir = Path(args.model_dir)
    check_not_foreign(model_dir)  # before the lock, whose file would be one more there
    if args.resume:
        check_resume_keeps(recipe, model_dir)
    # rank 0 alone writes the directory (if it cannot lock it, torchrun ends the other ranks)
    with training_lock(model_dir) if main_process else contextlib.nullcontext():
        trainer = train(recipe, model_dir, resume=args.resume, overwrite=args.overwrite,
                        init_from=Path(args.init_from) if args.init_from is not None else None)
    teardown(together=True)  # (after an error: at exit, once every rank printed it; see distributed.setup)
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
