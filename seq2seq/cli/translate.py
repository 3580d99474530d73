"""seq2seq-translate MODEL_DIR [--beam-size N] [--batch-size N] [--input F] [--output F]"""

from __future__ import annotations

from seq2seq.cli.common import ArgumentParser, read_input, run, write_output


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-translate",
                       description="Translate lines from stdin (or --input) to stdout.")
    p.add_argument("model_dir")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    p.add_argument("--batch-size", type=int, help="sentences per batch")
    p.add_argument("--input", help="file with one sentence per line (default stdin)")
    p.add_argument("--output", help="file to write (default stdout)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--weights", default="best.safetensors",
                   help="weights file: a name in MODEL_DIR or a path (e.g. an averaged checkpoint)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def check_sizes(args) -> None:
    from seq2seq.errors import UserError
    for flag in ("beam_size", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')}: must be at least 1, got {value}")


def main(argv) -> int:
    args = parser().parse_args(argv)
    check_sizes(args)
    from seq2seq.translator import Translator
    translator = Translator.load(args.model_dir, args.device, args.weights)
    lines = read_input(args.input)
    out = translator.translate(lines, args.beam_size, args.batch_size, progress=len(lines) > 500)
    write_output(out, args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
