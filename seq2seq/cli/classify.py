"""seq2seq-classify MODEL_DIR [FILE] [--probabilities] [--output F] [--batch-size N]: texts one per
line -> one class name per line; with --probabilities, one JSON object per line:

    {"label": "Sports", "probabilities": {"Sports": 0.9731, "World": 0.0154, "Business": 0.0072, "Sci/Tech": 0.0043}}

(every class, most probable first, rounded to 4 decimals). A blank input line gives a blank
output line, or {"label": "", "probabilities": {}}.
"""

from __future__ import annotations

from seq2seq.cli.common import ArgumentParser, add_labelling_options, check_sizes, read_input, run, write_output

PROGRESS_FROM = 2000  # texts; a progress bar (on stderr) from this many on


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-classify", description="Classify texts, one per line, from FILE or stdin.")
    p.add_argument("model_dir", help="a model directory trained with task: classification")
    p.add_argument("file", nargs="?", help="a file of texts, one per line (default stdin)")
    p.add_argument("--probabilities", action="store_true",
                   help='one JSON object per line: {"label": ..., "probabilities": {class: p, ...}}')
    add_labelling_options(p, "texts")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    check_sizes(args, ("batch_size",))
    from seq2seq.tasks.classification.classifier import Classifier, probability_line
    classifier = Classifier.load(args.model_dir, args.device, args.weights, args.precision)
    texts = read_input(args.file, hint="give texts one per line on stdin or as a FILE argument")
    progress = len(texts) >= PROGRESS_FROM
    if args.probabilities:
        lines = [probability_line(d) for d in classifier.probabilities(texts, batch_size=args.batch_size,
                                                                        progress=progress)]
    else:
        lines = classifier.classify(texts, batch_size=args.batch_size, progress=progress)
    write_output(lines, args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
