"""UTF-8 text files read line by line, each bad byte named by file and line: what every room's
data reading and the commands' input share (no `datasets` here, so reading input costs nothing)."""

from __future__ import annotations

from pathlib import Path

from seq2seq.errors import UserError


def iter_lines(path: Path):
    """Yield (line_number, text) of a UTF-8 file; bad bytes are an error naming the line."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{number}: bytes are not UTF-8 ({e.reason} at byte "
                                f"{e.start})") from None


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file (an empty file is an error)."""
    lines = [text for _, text in iter_lines(Path(path))]
    if not lines:
        raise UserError(f"{path}: file is empty")
    return lines
