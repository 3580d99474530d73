"""seq2seq-tag MODEL_DIR [FILE] [--conll] [--output F] [--batch-size N]: sentences in, one a line
with whitespace between the tokens (or, with --conll, a CoNLL file: a token a line, the word in
the first column, blank lines between sentences, -DOCSTART- lines passed over) -> a `token TAG`
line for each token and a blank line after each sentence, tags in IOB2:

    $ echo "EU rejects German call" | seq2seq-tag runs/conll2003
    EU B-ORG
    rejects O
    German B-MISC
    call O

An empty input line is an empty sentence: its output is the blank line alone, so the n-th blank
output line always ends the n-th input sentence.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.cli.common import ArgumentParser, add_labelling_options, check_sizes, read_input, run, write_output

PROGRESS_FROM = 2000  # sentences; a progress bar (on stderr) from this many on


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-tag", description="Tag sentences from FILE or stdin.")
    p.add_argument("model_dir", help="a model directory trained with task: tagging")
    p.add_argument("file", nargs="?", help="sentences, one a line, tokens split by whitespace (default stdin)")
    p.add_argument("--conll", action="store_true",
                   help="the input is a CoNLL file: a token a line, the word first; other columns are not read")
    add_labelling_options(p, "sentences")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    check_sizes(args, ("batch_size",))
    from seq2seq.tasks.tagging.data import parse_conll, read_conll
    from seq2seq.tasks.tagging.tagger import Tagger, conll_lines
    tagger = Tagger.load(args.model_dir, args.device, args.weights, args.precision)
    if args.conll and args.file:
        sentences = read_conll(Path(args.file), None).words
    else:
        lines = read_input(args.file, hint="give sentences one a line (or a CoNLL file with --conll) on stdin or "
                                           "as a FILE argument")
        sentences = (parse_conll("stdin", enumerate(lines, 1), None).words if args.conll else
                     [line.split() for line in lines])
    tags = tagger.tag(sentences, batch_size=args.batch_size, progress=len(sentences) >= PROGRESS_FROM)
    write_output(conll_lines(sentences, tags), args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
