"""seq2seq-evaluate MODEL_DIR [MODEL_DIR ...] --src F --ref F [--ref F ...] [--metric bleu|rouge]
[--multi-ref best|mean] [--beam-size N] [--min-length N] [--max-length N] [--no-repeat-ngram-size N]
[--length-penalty A] [--json]: sacreBLEU BLEU and chrF, or ROUGE-1/2/L F1 (rouge-score,
stemmed); several --ref files are several references per line. A classifier's MODEL_DIR: --src texts, --ref class names (one
per line) -> accuracy and macro-F1. A language model's: --src text alone -> perplexity and bits
per character. A tagger's: --src a CoNLL file with the gold tags -> entity P/R/F1 and token
accuracy. Several translation or summarisation MODEL_DIRs are scored as one ensemble
(seq2seq/tasks/translation/ensemble.py)."""

from __future__ import annotations

from seq2seq.cli.common import ArgumentParser, add_batch_size_option, add_model_options, add_search_options, run
from seq2seq.errors import UserError
from seq2seq.tasks.summarization.metric import MULTI_REFERENCE


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-evaluate",
                       description="Translate --src and score it against --ref.")
    p.add_argument("model_dir", nargs="+",
                   help="a model directory; several (translation, summarisation): an ensemble")
    p.add_argument("--src", required=True, help="source file, one sentence per line")
    p.add_argument("--ref", action="append", default=[],
                   help="reference file, line i for source line i; repeat for more references "
                        "(required but for a language model or a tagger)")
    p.add_argument("--metric", default="bleu", choices=["bleu", "rouge"],
                   help="bleu: BLEU and chrF (sacreBLEU); rouge: ROUGE-1/2/L F1 (rouge-score)")
    p.add_argument("--multi-ref", choices=MULTI_REFERENCE,
                   help="--metric rouge with several --ref files: each document counts its best-scoring "
                        "reference (best, the default; rouge-score's score_multi) or the mean over them (mean). "
                        "sacreBLEU's BLEU and chrF take all references at once")
    p.add_argument("--beam-size", type=int, help="1 for greedy; default from the recipe")
    add_batch_size_option(p, "sentences")
    add_search_options(p)
    p.add_argument("--output", help="also write the translations here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_options(p)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    if args.multi_ref and args.metric != "rouge":
        raise UserError("--multi-ref is for --metric rouge (sacreBLEU's BLEU and chrF take all references at once)")
    from seq2seq.tasks import TASKS, task_of
    # the room of (the first) meta.json's task; where it is unreadable or names none,
    # translation's, whose loading says what is wrong
    dirs, task = args.model_dir, task_of(args.model_dir[0])
    room = TASKS.get(task, TASKS["translation"])
    if len(dirs) > 1 and room not in (TASKS["translation"], TASKS["summarization"]):
        raise UserError(f"{dirs[0]}: a {task} model; several model directories (an ensemble) are "
                        "for translation and summarisation models")
    args.model_dir = dirs if len(dirs) > 1 else dirs[0]  # Translator.load takes either
    return room.evaluate(args)


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
