"""seq2seq-translate MODEL_DIR [MODEL_DIR ...] [--beam-size N] [--nbest N] [--batch-size N] [--input F] [--output F]
[--min-length N] [--max-length N] [--no-repeat-ngram-size N] [--length-penalty A]
[--sampling beam|greedy|topk:K|topp:P] [--temperature T] [--seed S] [--buffer-size N]

One output line per input line; an empty or whitespace-only input line gives an empty output line.
With --nbest N (or a recipe whose decoding.nbest is above 1) the output is an n-best list in the
Moses/fairseq style: up to N lines per input line, best first,

    INDEX ||| hypothesis ||| score

INDEX counts input lines from 0, the score is the search's (log-probability of the output and
EOS, divided by the GNMT length penalty when the beam is above 1; 4 decimals), '|||' in a
hypothesis is not escaped; a blank input line has one entry, an empty hypothesis with score 0.

--sampling topk:K or topp:P draws outputs instead of searching (seq2seq/sampling.py): N samples
per line with --nbest N, best score first (the model's log-probability of the sample), the same
for the same --seed whatever the batch.

With --buffer-size N, or when stdin is a terminal (N = 1), each N lines are translated as soon as
they are read and their output flushed (seq2seq/cli/streaming.py); otherwise all input is read
first. The output is the same either way.

Several model directories are an ensemble, searched as one model: each step the mean of their
log-probabilities (seq2seq/tasks/translation/ensemble.py); they share their vocabularies, and the
first one's recipe gives the decoding settings.
"""

from __future__ import annotations

from seq2seq.cli.common import (ArgumentParser, add_batch_size_option, add_model_options, add_sampling_options,
                                add_search_options, check_search_options, check_sizes,
                                decoding_choice, read_input, run, with_search_options, write_output)
from seq2seq.cli.streaming import (add_buffer_option, batches, buffer_size, file_lines, stdin_lines,
                                   write_batches)
from seq2seq.errors import UserError

HINT = "give one sentence per line on stdin or with --input"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-translate",
                       description="Translate lines from stdin (or --input) to stdout.")
    p.add_argument("model_dir", nargs="+",
                   help="a model directory; several: an ensemble (the mean of their log-probabilities)")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    p.add_argument("--nbest", type=int,
                   help="write the N best outputs per line as 'INDEX ||| hypothesis ||| score' "
                        "(at most the beam size; with --sampling, N samples); default: the "
                        "recipe's decoding.nbest")
    add_batch_size_option(p, "sentences")
    add_search_options(p)
    p.add_argument("--input", help="file with one sentence per line (default stdin)")
    p.add_argument("--output", help="file to write (default stdout)")
    add_buffer_option(p)
    add_sampling_options(p)
    add_model_options(p)
    return p


def nbest_lines(results, first: int = 0) -> list[str]:
    """Translations (Translator.translate_full) -> 'INDEX ||| hypothesis ||| score' lines, INDEX
    counted from `first`."""
    return [f"{i} ||| {c.text} ||| {c.score:.4f}"
            for i, r in enumerate(results, first) for c in r.hypotheses]


def main(argv) -> int:
    args = parser().parse_args(argv)
    check_sizes(args, ("beam_size", "batch_size", "nbest", "buffer_size"))
    check_search_options(args)
    from seq2seq.tasks.translation.translator import Translator
    choice = decoding_choice(args)  # its errors before the model loads
    translator = Translator.load(args.model_dir, args.device, args.weights, args.precision)
    decoding = translator.recipe.decoding
    changed = with_search_options(decoding, args)  # None: the recipe's
    beam, nbest = choice.get("beam_size") or decoding.beam_size, args.nbest or decoding.nbest
    if nbest > beam and "sampling" not in choice:
        given = "--nbest" if args.nbest else "decoding.nbest in the model's recipe"
        size = ("--beam-size" if args.beam_size else "--sampling greedy" if args.sampling == "greedy"
                else "decoding.beam_size in the model's recipe")
        raise UserError(f"nbest {nbest} ({given}) is more than the beam size {beam} ({size}): a beam "
                        f"search keeps beam_size hypotheses; give --beam-size {nbest} or more, or a "
                        "smaller --nbest")

    def translate(first: int, lines: list[str], progress: bool = False) -> list[str]:
        """Output lines for input lines first, first + 1, ..."""
        if args.nbest or nbest > 1:
            return nbest_lines(translator.translate_full(
                lines, nbest=nbest, batch_size=args.batch_size, progress=progress,
                decoding=changed, first_index=first, **choice), first)
        return translator.translate(lines, batch_size=args.batch_size, progress=progress,
                                    decoding=changed, first_index=first, **choice)

    stream = buffer_size(args.buffer_size, reading_stdin=not args.input)  # None: read it all
    if stream is None:
        lines = read_input(args.input, HINT)
        write_output(translate(0, lines, progress=len(lines) > 500), args.output)
    else:
        lines = file_lines(args.input) if args.input else stdin_lines()
        write_batches((translate(*batch) for batch in batches(lines, stream, HINT)), args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
