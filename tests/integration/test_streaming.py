"""Streaming input: seq2seq-translate --buffer-size N (or stdin a terminal) translates each batch
of lines as soon as it is read and flushes its output, so a program on the other end of a pipe
gets line i's translation before it writes line i + 1. The output equals the whole-input run's,
n-best indices, sampling seeds and --output included."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seq2seq.cli import streaming
from test_cli import assert_user_error, in_process

LINES = ["abc", "hgfe", "", "d", "bbcahg", "ab"]
WAIT = 120  # seconds for one line's answer, loading the model included; a hang fails, not blocks


def translate(model, *flags, capsys, monkeypatch, stdin="\n".join(LINES) + "\n"):
    result = in_process("translate", model, *flags, capsys=capsys, stdin=stdin, monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    return result.stdout


def start(model: Path, *flags, stdin) -> tuple[subprocess.Popen, queue.Queue]:
    """seq2seq-translate MODEL FLAGS in a new interpreter, stdout read line by line into a queue
    by a thread (so the test can wait for a line with a timeout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # so flushing shows
    env["OMP_NUM_THREADS"] = "1"
    process = subprocess.Popen([sys.executable, "-m", "seq2seq.cli.translate", str(model), *flags],
                               stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: queue.Queue = queue.Queue()

    def read():
        for raw in process.stdout:
            lines.put(raw.decode("utf-8").rstrip("\n"))
        lines.put(None)  # end of output

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def next_line(lines: queue.Queue, process: subprocess.Popen) -> str | None:
    try:
        return lines.get(timeout=WAIT)
    except queue.Empty:
        process.kill()
        pytest.fail(f"no output line within {WAIT} s: the command waits for more input, or did "
                    "not flush its output")


def test_a_pipe_gets_each_line_before_the_next_is_written(trained, capsys, monkeypatch):
    batch = translate(trained, "--beam-size", "2", capsys=capsys, monkeypatch=monkeypatch).splitlines()
    process, lines = start(trained, "--beam-size", "2", "--buffer-size", "1", stdin=subprocess.PIPE)
    try:
        for line, expected in zip(LINES, batch):
            process.stdin.write(line.encode("utf-8") + b"\n")
            process.stdin.flush()  # stdin stays open: the answer must come without EOF
            assert next_line(lines, process) == expected
        process.stdin.close()
        assert next_line(lines, process) is None
        assert process.wait(timeout=WAIT) == 0, process.stderr.read().decode()
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()


def test_a_terminal_is_read_line_by_line(trained, capsys, monkeypatch):
    """stdin a pseudo-terminal (python's pty module), no --buffer-size: one line at a time; ^D ends."""
    import pty
    import termios
    batch = translate(trained, "--beam-size", "2", capsys=capsys, monkeypatch=monkeypatch).splitlines()
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO  # the terminal does not echo what the test types
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    process, lines = start(trained, "--beam-size", "2", stdin=slave)
    os.close(slave)
    try:
        for line, expected in zip(LINES[:3], batch):
            os.write(master, line.encode("utf-8") + b"\n")
            assert next_line(lines, process) == expected
        os.write(master, b"\x04")  # ^D at the start of a line: end of input
        assert next_line(lines, process) is None
        assert process.wait(timeout=WAIT) == 0, process.stderr.read().decode()
    finally:
        process.kill()
        os.close(master)
        process.stdout.close()
        process.stderr.close()


def test_when_input_is_streamed(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert streaming.buffer_size(None, reading_stdin=True) == 1  # a terminal
    assert streaming.buffer_size(None, reading_stdin=False) is None  # --input F: read it all
    assert streaming.buffer_size(5, reading_stdin=False) == 5
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert streaming.buffer_size(None, reading_stdin=True) is None  # a pipe: read it all
    assert streaming.buffer_size(2, reading_stdin=True) == 2


@pytest.mark.parametrize("flags", [("--beam-size", "2"), ("--beam-size", "3", "--nbest", "2"),
                                   ("--sampling", "topk:3", "--seed", "5", "--nbest", "3")])
@pytest.mark.parametrize("size", ["1", "4"])
def test_streamed_output_equals_the_whole_input_run(talkative, capsys, monkeypatch, flags, size):
    whole = translate(talkative, *flags, capsys=capsys, monkeypatch=monkeypatch)
    assert translate(talkative, *flags, "--buffer-size", size, capsys=capsys,
                     monkeypatch=monkeypatch) == whole


def test_streaming_from_and_to_files(talkative, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    whole = translate(talkative, "--input", src, "--nbest", "2", capsys=capsys, monkeypatch=monkeypatch)
    assert translate(talkative, "--input", src, "--nbest", "2", "--buffer-size", "4", "--output",
                     tmp_path / "out.txt", capsys=capsys, monkeypatch=monkeypatch) == ""
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == whole


def test_streaming_errors(trained, tmp_path, capsys, monkeypatch):
    assert_user_error(in_process("translate", trained, "--buffer-size", "0", capsys=capsys), "--buffer-size")
    assert_user_error(in_process("translate", trained, "--buffer-size", "2", capsys=capsys, stdin="",
                                 monkeypatch=monkeypatch), "empty input")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert_user_error(in_process("translate", trained, "--buffer-size", "2", "--input", empty,
                                 capsys=capsys), "empty.txt", "empty")
    bad = in_process("translate", trained, "--buffer-size", "1", capsys=capsys, stdin=b"abc\n\xff\n",
                     monkeypatch=monkeypatch)
    assert_user_error(bad, "stdin:2:", "UTF-8")
    assert len(bad.stdout.splitlines()) == 1  # line 1 was translated and written before line 2 was read
