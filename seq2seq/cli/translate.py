"""seq2seq-translate MODEL_DIR [--beam-size N] [--batch-size N] [--input F] [--output F]"""

from __future__ import annotations

from seq2seq.cli.common import ArgumentParser, add_model_options, check_sizes, read_input, run, write_output


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-translate",
                       description="Translate lines from stdin (or --input) to stdout.")
    p.add_argument("model_dir")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    p.add_argument("--batch-size", type=int, help="sentences per batch")
    p.add_argument("--input", help="file with one sentence per line (default stdin)")
    p.add_argument("--output", help="file to write (default stdout)")
    add_model_options(p)
    return p


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
