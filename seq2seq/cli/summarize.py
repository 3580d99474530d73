"""seq2seq-summarize MODEL_DIR [MODEL_DIR ...] [FILE ...] [--output F] [--beam-size N]
[--min-length N] [--max-length N] [--no-repeat-ngram-size N] [--length-penalty A] [--sampling beam|greedy|topk:K|topp:P]
[--temperature T] [--seed S] [--buffer-size N]: documents one per line -> summaries one per line
(the 1-best, or one sample). With --buffer-size N, or when stdin is a terminal (N = 1), each N
documents are summarised as soon as they are read and their summaries flushed
(seq2seq/cli/streaming.py). The leading arguments that are directories are the models: several
are an ensemble, searched as one model (seq2seq/tasks/translation/ensemble.py); the others, files."""

from __future__ import annotations

import sys
from pathlib import Path

from seq2seq.cli.common import (ArgumentParser, add_batch_size_option, add_model_options, add_sampling_options,
                                add_search_options, check_search_options, check_sizes,
                                decoding_choice, read_input, run, write_output)
from seq2seq.cli.streaming import (add_buffer_option, batches, buffer_size, file_lines, stdin_lines,
                                   write_batches)
from seq2seq.errors import UserError

PROGRESS_FROM = 200  # documents; a progress bar (on stderr) from this many on
HINT = "give documents one per line on stdin or as FILE arguments"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-summarize",
                       description="Summarise documents, one per line, from FILEs or stdin.")
    p.add_argument("model_dir", help="a model directory trained with task: summarization; the "
                                     "directories after it, before any FILE, join it in an ensemble")
    p.add_argument("files", nargs="*", help="files of documents, one per line (default stdin)")
    p.add_argument("--output", help="file to write (default stdout)")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    add_search_options(p)
    add_batch_size_option(p, "documents")
    add_buffer_option(p)
    add_sampling_options(p)
    add_model_options(p)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    check_sizes(args, ("beam_size", "batch_size", "buffer_size"))
    check_search_options(args)
    from seq2seq.tasks.summarization.summarizer import Summarizer
    choice = decoding_choice(args)  # its errors before the model loads
    models = [args.model_dir]
    while args.files and Path(args.files[0]).is_dir():  # a FILE is never a directory
        models.append(args.files.pop(0))
    for path in args.files:
        if Path(path).is_dir():
            raise UserError(f"{path}: a directory among the FILEs; give the model directories "
                            "first, then the files of documents")
    summarizer = Summarizer.load(models, args.device, args.weights, args.precision)
    if summarizer.recipe.decoding.nbest > 1:
        print(f"warning: decoding.nbest is {summarizer.recipe.decoding.nbest} in the model's recipe; "
              "seq2seq-summarize writes one summary per document (the 1-best, or one sample)",
              file=sys.stderr)

    def summarize(first: int, documents: list[str], progress: bool = False) -> list[str]:
        return summarizer.summarize(documents, min_length=args.min_length, max_length=args.max_length,
                                    no_repeat_ngram_size=args.no_repeat_ngram_size,
                                    length_penalty=args.length_penalty,
                                    batch_size=args.batch_size, progress=progress,
                                    first_index=first, **choice)

    stream = buffer_size(args.buffer_size, reading_stdin=not args.files)  # None: read it all
    if stream is None:
        if args.files:
            documents = [line for f in args.files for line in read_input(f)]
        else:
            documents = read_input(None, hint=HINT)
        write_output(summarize(0, documents, progress=len(documents) >= PROGRESS_FROM), args.output)
    else:
        lines = (line for f in args.files for line in file_lines(f)) if args.files else stdin_lines()
        write_batches((summarize(*batch) for batch in batches(lines, stream, HINT)), args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
