"""Translate one sentence and draw its attention as a heatmap PNG.

    python tools/plot_attention.py MODEL_DIR "tuesday, march 3, 2015" attention.png [--beam-size N]
"""

from __future__ import annotations

import argparse
import sys

from seq2seq.cli.common import run


def main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("sentence")
    p.add_argument("output", help="PNG file to write")
    p.add_argument("--beam-size", type=int, default=1)
    args = p.parse_args(argv)
    from seq2seq.tasks.translation.plot import plot_attention
    from seq2seq.tasks.translation.translator import Translator
    # translate_full names the pieces: a copied (extended) id as the source text it copies
    [result] = Translator.load(args.model_dir).translate_full([args.sentence], args.beam_size,
                                                              attention=True)
    best = result.hypotheses[0]
    plot_attention(best.attention, result.source_pieces, best.pieces, args.output,
                   title=f"{args.sentence} -> {best.text}")
    print(f"{args.sentence} -> {best.text}; attention written to {args.output}")
    return 0


if __name__ == "__main__":
    run(main, sys.argv[1:])
