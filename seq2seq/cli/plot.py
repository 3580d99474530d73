"""seq2seq-plot MODEL_DIR [MODEL_DIR ...] [--output F]

Learning curves of one or more model directories in one picture (training and validation loss,
validation score, learning rate, by step), one colour per run, labelled with the directory names:
for comparing recipes. Training itself redraws MODEL_DIR/curves.png at every validation.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.cli.common import ArgumentParser, run


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-plot", description="Overlay the learning curves of model directories.")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="model directories (their logs)")
    p.add_argument("--output", default="curves.png",
                   help="image to write; its suffix picks the format (png, pdf, svg, ...)")
    p.add_argument("--title", default="", help="title over the panels (default: the run names)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def labels(dirs: list[Path]) -> list[str]:
    """The directory names, or the paths as given where two names are the same."""
    names = [d.resolve().name for d in dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, dirs)]


def main(argv) -> int:
    args = parser().parse_args(argv)
    from seq2seq.curves import load_run, plot_runs
    dirs = [Path(d) for d in args.model_dirs]
    runs = [load_run(d, name) for d, name in zip(dirs, labels(dirs))]
    plot_runs(runs, args.output, args.title)
    print(f"wrote {args.output} ({len(runs)} run{'s' if len(runs) > 1 else ''}: "
          f"{', '.join(r.name for r in runs)})")
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
