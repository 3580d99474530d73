"""What every command shares: user errors on one line, exit codes, reading input."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from seq2seq.errors import UserError


def run(main, argv=None) -> None:
    """Call main(argv); a UserError prints one line and exits 2 (`--debug` shows the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        code = main(argv)
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(code or 0)


def read_input(path: str | None, what: str = "input") -> list[str]:
    """Lines from a file or stdin; empty input is an error."""
    if path:
        from seq2seq.data import read_lines
        return read_lines(Path(path))
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"stdin:{line}: bytes are not UTF-8") from None
    lines = text.splitlines() if "\r" in text else text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise UserError(f"empty {what}: give one sentence per line on stdin or with --input")
    return lines


def write_output(lines: list[str], path: str | None) -> None:
    if path:
        from seq2seq.checkpoint import atomic_write
        atomic_write(Path(path), lambda p: p.write_text("".join(l + "\n" for l in lines), encoding="utf-8"))
    else:
        sys.stdout.write("".join(l + "\n" for l in lines))
        sys.stdout.flush()
