"""What every command shares: user errors on one line, exit codes, reading input."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import traceback
from pathlib import Path

from seq2seq.checkpoint import BEST
from seq2seq.config import DecodingConfig
from seq2seq.errors import UserError, one_line


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes are UserErrors: one line, exit status 2, like every other error."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def run(main, argv=None) -> None:
    """Call main(argv); a UserError (or an OSError: a file that cannot be read or written) prints
    one line and exits 2; `--debug` shows the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        code = main(argv)
    except (UserError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            sys.exit(0)
        if debug:
            traceback.print_exc()
        print("error: " + one_line(e), file=sys.stderr)
        _exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    _exit(code or 0)


def _exit(code: int) -> None:
    """Exit with `code`. Under torchrun, leave the process group and end the process at once: the
    C++ side's threads, torn down by the interpreter's exit, could abort it after its last line
    ('terminate called without an active exception', exit status 134), and torchrun would report
    a finished run as failed."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or os.environ.get("WORLD_SIZE", "1") in ("", "0", "1"):
        sys.exit(code)
    from seq2seq.distributed import teardown
    teardown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def read_input(path: str | None, hint: str = "give one sentence per line on stdin or with --input") -> list[str]:
    """Lines from a file or stdin; empty input is an error, whose message ends with `hint`."""
    if path:
        from seq2seq.lines import read_lines
        return read_lines(Path(path))
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"stdin:{line}: bytes are not UTF-8") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]  # as files are read
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise UserError(f"empty input: {hint}")
    return lines


def write_output(lines: list[str], path: str | None) -> None:
    if path:
        from seq2seq.checkpoint import atomic_write
        try:
            atomic_write(Path(path), lambda p: p.write_text("".join(l + "\n" for l in lines),
                                                            encoding="utf-8"))
        except OSError as e:
            raise UserError(f"{path}: cannot write the output ({e.strerror})") from None
    else:
        sys.stdout.write("".join(l + "\n" for l in lines))
        sys.stdout.flush()


def add_model_options(p) -> None:
    """The options every command that loads a model directory shares."""
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8"],
                   help="fp32; bf16 (autocast); int8 (dynamic quantisation, CPU only); auto: by device "
                        "(seq2seq/device.py DECODING_AUTO); default: the recipe's decoding.precision")
    p.add_argument("--weights", default=BEST,
                   help="weights file: a name in MODEL_DIR or a path (e.g. an averaged checkpoint)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_labelling_options(p, unit: str) -> None:
    """--output, --batch-size (of `unit`: texts, sentences) and the model options, for the commands
    that label their input lines with a model (seq2seq-classify, seq2seq-tag)."""
    p.add_argument("--output", help="file to write (default stdout)")
    add_batch_size_option(p, unit, search=False)
    add_model_options(p)


def add_batch_size_option(p, unit: str, search: bool = True) -> None:
    """--batch-size: `unit` (sentences, documents, texts) per batch; its help says what the recipe's
    decoding.batch_size 0 means (DecodingConfig.sentences_per_batch), for searches or the others."""
    auto = DecodingConfig()
    said = (f"{auto.sentences_per_batch(greedy=True)} greedy, {auto.sentences_per_batch()} beam" if search
            else f"{auto.sentences_per_batch()}")
    p.add_argument("--batch-size", type=int,
                   help=f"{unit} per batch (default: the recipe's decoding.batch_size; 0 there: {said})")


SEARCH_SIZES = ("min_length", "max_length", "no_repeat_ngram_size")  # the search options that count pieces


def add_search_options(p) -> None:
    """--min-length, --max-length, --no-repeat-ngram-size and --length-penalty, for the commands
    that run a search (translate, summarize, evaluate); each replaces the recipe's decoding value."""
    p.add_argument("--min-length", type=int, help="pieces before the output may end (0: none)")
    p.add_argument("--max-length", type=int, help="at most this many pieces (0: no cap)")
    p.add_argument("--no-repeat-ngram-size", type=int, help="never repeat an n-gram of this many pieces (0: off)")
    p.add_argument("--length-penalty", type=float,
                   help="GNMT alpha of the beam search: a hypothesis' log-probability divided by "
                        "((5 + length) / 6) ** alpha; 0: none; default: the recipe's decoding.length_penalty")


def check_search_options(args) -> None:
    """The search options, when given: whole numbers >= 0, and a length penalty that is a number
    >= 0 (a one-line error otherwise)."""
    check_sizes(args, SEARCH_SIZES, minimum=0)
    value = args.length_penalty
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UserError(f"--length-penalty: must be a number >= 0, got {value}")


def with_search_options(decoding, args):
    """The recipe's decoding section with the search options given (checked before the model
    loaded: check_search_options); None when none is, so that the recipe's applies."""
    changes = {name: getattr(args, name) for name in (*SEARCH_SIZES, "length_penalty")}
    changes = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(decoding, **changes) if changes else None


def add_sampling_options(p) -> None:
    """--sampling, --temperature and --seed (seq2seq/sampling.py), for the commands that decode."""
    p.add_argument("--sampling", default="beam", metavar="{beam,greedy,topk:K,topp:P}",
                   help="beam: beam search of --beam-size (default); greedy: beam size 1; topk:K, "
                        "topp:P: draw each token from the K most probable, or from the fewest most "
                        "probable whose probability reaches P (N samples per line with --nbest N)")
    p.add_argument("--temperature", type=float,
                   help="topk/topp: sample from softmax(logits / T), before the cut (default 1)")
    p.add_argument("--seed", type=int,
                   help="topk/topp: line i draws from a generator seeded by (SEED, i), so samples "
                        "repeat from run to run, whatever --batch-size or --buffer-size (default 0)")


def decoding_choice(args) -> dict:
    """What --sampling, --beam-size, --temperature and --seed ask for, as keywords of
    Translator.translate (beam_size; or sampling, temperature, seed); a flag the choice leaves
    unused is a warning line on stderr, bad values and contradictions one-line errors."""
    from seq2seq.sampling import parse_sampling
    if args.temperature is not None and not args.temperature > 0:
        raise UserError(f"--temperature: must be above 0, got {args.temperature}")
    plan = parse_sampling(args.sampling, args.temperature, args.seed, where="--sampling")
    if plan is not None:
        if args.beam_size is not None:
            print(f"warning: --beam-size is not used with --sampling {args.sampling}", file=sys.stderr)
        return {"sampling": args.sampling, "temperature": args.temperature, "seed": args.seed}
    if args.temperature is not None or args.seed is not None:
        print("warning: --temperature and --seed apply to --sampling topk:K or topp:P only; not used",
              file=sys.stderr)
    if args.sampling == "greedy":
        if args.beam_size not in (None, 1):
            raise UserError(f"--sampling greedy is beam size 1, but --beam-size is {args.beam_size}")
        return {"beam_size": 1}
    return {"beam_size": args.beam_size}


# upper bounds of the sizes a command takes: beams beyond 1000 (Koehn and Knowles 2017 went that far)
# only cost memory, (B * K, V) scores a step; any other size stops at int64, where tensors stop
MAXIMA = {"beam_size": 1000, "nbest": 1000, "batch_size": 100_000}
_INT64_MAX = 2**63 - 1


def check_sizes(args, flags: tuple[str, ...] = ("beam_size", "batch_size"), minimum: int = 1) -> None:
    """Each option in `flags` (by default --beam-size and --batch-size), when given, is at least
    `minimum` and at most its MAXIMA (int64 for the others)."""
    for flag in flags:
        value = getattr(args, flag)
        if value is None:
            continue
        if value < minimum:
            raise UserError(f"--{flag.replace('_', '-')}: must be at least {minimum}, got {value}")
        if value > MAXIMA.get(flag, _INT64_MAX):
            raise UserError(f"--{flag.replace('_', '-')}: must be at most {MAXIMA.get(flag, _INT64_MAX)}, "
                            f"got {value}")
