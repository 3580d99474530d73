"""seq2seq-serve as a command: a real server process on a free port answers the API (outputs equal
to the library's) and stops on SIGINT; tools/load_serve.py runs against it; bad flags, missing
directories, a taken port and a missing extra are one-line errors with exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="the tests talk to the server with httpx")

from seq2seq.cli.common import run  # noqa: E402
from seq2seq.cli.serve import main, named_dirs  # noqa: E402
from seq2seq.config import recipe_from_dict  # noqa: E402
from seq2seq.tasks import train  # noqa: E402
from seq2seq.tasks.translation.translator import Translator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from load_serve import started_server  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, reverse_corpus, make_tiny_recipe) -> Path:
    root = tmp_path_factory.mktemp("serve_cli")
    train(recipe_from_dict(make_tiny_recipe(reverse_corpus(root / "data"))), root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """`seq2seq-serve rev=MODEL_DIR` on a free port: (base url, process, its stderr file)."""
    log = open(tmp_path_factory.mktemp("serve_log") / "stderr.txt", "w+")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log, started_server([f"rev={model_dir}", "--device", "cpu"], log, env) as (url, proc):
        yield url, proc, log


def test_the_server_answers(server, model_dir):
    url, _, _ = server
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "models": 1}
    assert [m["name"] for m in httpx.get(f"{url}/v1/models").json()["models"]] == ["rev"]
    lines = ["abc", "hgfedcba"]
    body = httpx.post(f"{url}/v1/translate", json={"text": lines, "beam_size": 3}).json()
    assert body["outputs"] == [[o] for o in Translator.load(model_dir, "cpu").translate(lines, 3)]
    assert "<html" in httpx.get(url + "/").text


def test_load_tool_reports_each_level(server):
    url, _, _ = server
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "load_serve.py"), "--url", url,
                          "--clients", "1,3", "--requests", "6", "--seconds", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "6", "0"), ("3", "6", "0")]  # clients, requests, errors
    assert all(float(r[5]) >= float(r[4]) for r in rows)  # p95 >= p50; the speeds are the tool's to report


def test_load_tool_refuses_other_hosts():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "load_serve.py"), "--url",
                          "http://192.168.1.1:8080"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "not a loopback address" in out.stderr


def test_sigint_stops_the_server_gracefully(server):
    _, proc, log = server  # (after the tests that use it: the server is gone afterwards)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130  # as every command exits on Ctrl-C (cli/common.py)
    log.seek(0)
    err = log.read()
    assert "Application shutdown complete" in err and "Traceback" not in err


def serve(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run(main, [str(a) for a in args])
    err = capsys.readouterr().err
    return info.value.code, err


@pytest.mark.parametrize("args,needle", [
    (["--max-sentences", "0"], "--max-sentences: must be a finite number at least 1, got 0"),
    (["--batch-wait-ms", "nan"], "--batch-wait-ms"),
    (["--max-chars", "x"], "--max-chars: invalid int value"),
    (["--port", "70000"], "--port: must be between 0 and 65535"),
])
def test_bad_flags_are_one_line_errors(capsys, model_dir, args, needle):
    code, err = serve(capsys, model_dir, *args)
    assert code == 2 and err.startswith("error: ") and needle in err and len(err.splitlines()) == 1


def test_missing_or_incomplete_model_directories(capsys, tmp_path):
    code, err = serve(capsys, tmp_path / "nowhere")
    assert code == 2 and "nowhere: not a model directory" in err
    code, err = serve(capsys, tmp_path)
    assert code == 2 and "meta.json: missing" in err


def test_a_taken_port_is_a_one_line_error(capsys, model_dir):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, err = serve(capsys, model_dir, "--port", port)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def test_without_the_serve_extra(capsys, model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    code, err = serve(capsys, model_dir)
    assert code == 2 and 'pip install -e ".[serve]"' in err


def test_model_names(tmp_path):
    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    assert named_dirs([str(tmp_path / "x")]) == [("x", str(tmp_path / "x"))]
    assert [n for n, _ in named_dirs([str(a), str(b)])] == ["a/model", "b/model"]
    assert named_dirs([f"demo={a}", str(b)]) == [("demo", str(a)), ("model", str(b))]
    with pytest.raises(Exception, match="given twice"):
        named_dirs([str(a), str(a)])
    with pytest.raises(Exception, match="named alike"):
        named_dirs([f"m={a}", f"m={b}"])
