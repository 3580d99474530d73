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
    from seq2seq.plot import plot_attention
    from seq2seq.translator import Translator
    from seq2seq.vocab import EOS
    t = Translator.load(args.model_dir)
    hyp = t.search([args.sentence], beam_size=args.beam_size, return_attention=True)[0][0]
    src = t.src_vocab.pieces(t.src_vocab.encode([args.sentence])[0])
    out = t.tgt_vocab.pieces(hyp.tokens + [EOS])
    text = t.tgt_vocab.decode([hyp.tokens])[0]
    plot_attention(hyp.attention, src, out, args.output, title=f"{args.sentence} -> {text}")
    print(f"{args.sentence} -> {text}; attention written to {args.output}")
    return 0


if __name__ == "__main__":
    run(main, sys.argv[1:])
