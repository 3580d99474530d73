"""Streaming input for seq2seq-translate and seq2seq-summarize: each batch of lines is decoded as
soon as it has been read, and its output written and flushed before the next line is read, so a
pipe to another program works line by line (fairseq-interactive's --buffer-size).

    size = buffer_size(args.buffer_size, reading_stdin=args.input is None)  # None: read it all
    write_batches((decode(first, lines) for first, lines in batches(stdin_lines(), size, hint)),
                  args.output)

A batch is `--buffer-size N` lines (the last may be shorter), or one line when stdin is a
terminal; without either the commands read all input first and sort it by length, which is
faster. Output order is input order either way: batches are decoded one after the other, each in
its own order, and `first` (the index of a batch's first line) keeps n-best indices and sampling
seeds what one whole-input run gives.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from seq2seq.errors import UserError


def add_buffer_option(p) -> None:
    p.add_argument("--buffer-size", type=int,
                   help="read N lines, decode them, write and flush their output, then read on "
                        "(default: 1 when stdin is a terminal, else all input at once)")


def buffer_size(option: int | None, reading_stdin: bool) -> int | None:
    """Lines per batch when streaming: --buffer-size when given, 1 when the command reads a
    terminal (sys.stdin.isatty()), else None: read all input first."""
    if option is not None:
        return option
    if reading_stdin and sys.stdin.isatty():
        return 1
    return None


def stdin_lines() -> Iterator[str]:
    """stdin's lines as they arrive (one readline each, nothing read ahead of the line asked
    for), without '\\n' and '\\r'; bytes that are not UTF-8 are an error naming the line."""
    number = 0
    while raw := sys.stdin.buffer.readline():
        number += 1
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"stdin:{number}: bytes are not UTF-8") from None


def file_lines(path: str | Path) -> Iterator[str]:
    """A file's lines one by one (a FIFO too); an empty file is an error, as for read_lines."""
    from seq2seq.lines import iter_lines
    number = 0
    for number, text in iter_lines(Path(path)):
        yield text
    if number == 0:
        raise UserError(f"{path}: file is empty")


def batches(lines: Iterable[str], size: int, hint: str) -> Iterator[tuple[int, list[str]]]:
    """(index of the first line, up to `size` lines), each as soon as its lines are read; no line
    at all is the 'empty input' error, which ends with `hint`."""
    first, batch = 0, []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield first, batch
            first, batch = first + size, []
    if batch:
        yield first, batch
    elif first == 0:
        raise UserError(f"empty input: {hint}")


def write_batches(outputs: Iterable[list[str]], path: str | None) -> None:
    """Write each batch of output lines as it comes and flush: to stdout, or to `path`, which is
    created (or emptied) when the first batch is done."""
    out = None
    try:
        for lines in outputs:
            if out is None:
                try:
                    out = open(path, "w", encoding="utf-8") if path else sys.stdout
                except OSError as e:
                    raise UserError(f"{path}: cannot write the output ({e.strerror})") from None
            out.write("".join(line + "\n" for line in lines))
            out.flush()
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
