"""seq2seq-evaluate MODEL_DIR --src F --ref F [--ref F ...] [--metric bleu|rouge] [--beam-size N]
[--json]: sacreBLEU BLEU and chrF, or ROUGE-1/2/L F1 (rouge-score, stemmed); several --ref files
are several references per line. A classifier's MODEL_DIR: --src texts, --ref class names (one
per line) -> accuracy and macro-F1. A language model's: --src text alone -> perplexity and bits
per character. A tagger's: --src a CoNLL file with the gold tags -> entity P/R/F1 and token
accuracy."""

from __future__ import annotations

import json
import sys

from seq2seq.cli.common import ArgumentParser, add_model_options, check_sizes, run, write_output
from seq2seq.errors import UserError


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-evaluate",
                       description="Translate --src and score it against --ref.")
    p.add_argument("model_dir")
    p.add_argument("--src", required=True, help="source file, one sentence per line")
    p.add_argument("--ref", action="append", default=[],
                   help="reference file, line i for source line i; repeat for more references "
                        "(required but for a language model or a tagger)")
    p.add_argument("--metric", default="bleu", choices=["bleu", "rouge"],
                   help="bleu: BLEU and chrF (sacreBLEU); rouge: ROUGE-1/2/L F1 (rouge-score)")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    p.add_argument("--batch-size", type=int, help="sentences per batch")
    p.add_argument("--output", help="also write the translations here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_options(p)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    from seq2seq.tasks import TASKS, task_of
    task = task_of(args.model_dir)
    if task in TASKS:  # a classifier (--ref: class names) or a language model (--src alone): seq2seq/tasks/
        return TASKS[task].evaluate(args)
    if not args.ref:
        raise UserError("the following arguments are required: --ref (see seq2seq-evaluate --help)")
    check_sizes(args)
    from pathlib import Path

    from seq2seq.data import check_parallel, read_lines
    from seq2seq.metrics import bleu, chrf, rouge
    from seq2seq.translator import Translator
    for ref in args.ref:
        check_parallel(Path(args.src), Path(ref))
    translator = Translator.load(args.model_dir, args.device, args.weights, args.precision)
    if translator.recipe.decoding.nbest > 1:
        print(f"warning: decoding.nbest is {translator.recipe.decoding.nbest} in the model's recipe; "
              "seq2seq-evaluate scores the 1-best output", file=sys.stderr)
    src, streams = read_lines(Path(args.src)), [read_lines(Path(ref)) for ref in args.ref]
    beam = args.beam_size or translator.recipe.decoding.beam_size
    hyps = translator.translate(src, beam, args.batch_size, progress=len(src) > 500)
    if args.output:
        write_output(hyps, args.output)
    if args.metric == "rouge":
        scores = {k: round(v, 2) for k, v in rouge(hyps, [list(r) for r in zip(*streams)]).items()}
        result = {**scores, "references": len(streams), "beam_size": beam, "sentences": len(src)}
        text = "ROUGE-1 {rouge1:.2f}  ROUGE-2 {rouge2:.2f}  ROUGE-L {rougeL:.2f}".format(**scores) + \
            f"  (F1, rouge-score, Porter stemmer, {len(streams)} reference(s))"
    else:
        b, b_sig = bleu(hyps, *streams)
        c, c_sig = chrf(hyps, *streams)
        result = {"bleu": round(b, 2), "chrf": round(c, 2), "bleu_signature": b_sig,
                  "chrf_signature": c_sig, "beam_size": beam, "sentences": len(src)}
        text = f"BLEU {b:.2f}  ({b_sig})\nchrF {c:.2f}  ({c_sig})"
    print(json.dumps(result) if args.json else text)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
