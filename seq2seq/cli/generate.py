"""seq2seq-generate MODEL_DIR [--prefix TEXT] [--length N] [--sampling greedy|topk:K|topp:P]
[--temperature T] [--seed S] [--num-samples N] [--json] [--output F]: text from a language model
(task: language_model), the prefix followed by N generated units (characters with a character
vocabulary, pieces otherwise). Greedy by default; sampled outputs repeat for a seed. With
--num-samples N above 1 each sample follows a line '=== sample J of N'; --json writes one object a
line, {"sample": J, "prefix": ..., "text": the continuation}.
"""

from __future__ import annotations

import json
import sys

from seq2seq.cli.common import ArgumentParser, add_model_options, run, write_output
from seq2seq.errors import UserError


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-generate", description="Generate text with a language model.")
    p.add_argument("model_dir", help="a model directory trained with task: language_model")
    p.add_argument("--prefix", default="", help="the text to continue (default: none, the start of a line); "
                                                "a newline in it is a line break")
    p.add_argument("--length", type=int, default=200, help="units to generate (default 200)")
    p.add_argument("--sampling", default="greedy", metavar="{greedy,topk:K,topp:P}",
                   help="greedy: the most probable unit each time (default); topk:K, topp:P: drawn from the K "
                        "most probable, or from the fewest most probable whose probability reaches P")
    p.add_argument("--temperature", type=float, help="topk/topp: sample from softmax(logits / T) (default 1)")
    p.add_argument("--seed", type=int, help="topk/topp: sample J draws from a generator seeded by (SEED, J), "
                                            "so samples repeat from run to run (default 0)")
    p.add_argument("--num-samples", type=int, default=1, help="continuations to generate (default 1)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object a sample: {"sample": J, "prefix": ..., "text": the continuation}')
    p.add_argument("--output", help="file to write (default stdout)")
    add_model_options(p)
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    if args.length < 1:
        raise UserError(f"--length: must be at least 1, got {args.length}")
    if args.num_samples < 1:
        raise UserError(f"--num-samples: must be at least 1, got {args.num_samples}")
    if args.temperature is not None and not args.temperature > 0:
        raise UserError(f"--temperature: must be above 0, got {args.temperature}")
    from seq2seq.tasks.language_model.generator import LanguageModel, parse_scheme
    if parse_scheme(args.sampling, args.temperature, args.seed, where="--sampling") is None and \
            (args.temperature is not None or args.seed is not None):
        print("warning: --temperature and --seed apply to --sampling topk:K or topp:P only; not used",
              file=sys.stderr)
    from seq2seq.tasks.language_model.data import UNKNOWN
    from seq2seq.vocab import UNK
    lm = LanguageModel.load(args.model_dir, args.device, args.weights, args.precision)
    unknown = sorted({c for c in args.prefix if c != "\n" and UNK in lm.encode(c)})
    if unknown:
        print(f"warning: --prefix: {''.join(unknown)!r} not in the model's vocabulary; read as unknown "
              f"({UNKNOWN})", file=sys.stderr)
    texts = lm.generate(args.prefix, args.length, sampling=args.sampling, temperature=args.temperature,
                        seed=args.seed, num_samples=args.num_samples)
    texts = [texts] if args.num_samples == 1 else texts
    if args.json:
        lines = [json.dumps({"sample": j + 1, "prefix": args.prefix, "text": t}, ensure_ascii=False)
                 for j, t in enumerate(texts)]
    else:
        lines = []
        for j, text in enumerate(texts):
            if len(texts) > 1:
                lines.append(f"=== sample {j + 1} of {len(texts)}")
            lines.append((args.prefix + text).removesuffix("\n"))
    write_output(lines, args.output)
    return 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
