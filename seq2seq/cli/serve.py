"""seq2seq-serve [NAME=]MODEL_DIR [...] [--host 127.0.0.1] [--port 8080] [--batch-wait-ms MS]
[--max-batch-sentences N] [--max-sentences N] [--max-chars N] [--max-beam-size N]

Serves the models over HTTP (the JSON API and the page of seq2seq/serve/app.py) under uvicorn.
Needs the serve extra: pip install -e ".[serve]". Each model is named by its directory (by as
many trailing path parts as it takes to tell two apart), or as NAME=MODEL_DIR.
"""

from __future__ import annotations

import dataclasses
import signal
import socket
from pathlib import Path

from seq2seq.cli.common import ArgumentParser, add_model_options, run
from seq2seq.errors import UserError
from seq2seq.serve.settings import ServeConfig


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="seq2seq-serve",
                       description="Serve models over HTTP: a JSON API and a page with attention.")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR",
                   help="model directories (translation or summarisation, as meta.json says), "
                        "each optionally as NAME=MODEL_DIR to name it in requests")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
    for f in dataclasses.fields(ServeConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"{f.metadata['help']} (default {f.default})")
    add_model_options(p)
    return p


def named_dirs(args: list[str]) -> list[tuple[str, str]]:
    """(name, directory) for each MODEL_DIR or NAME=MODEL_DIR argument. A bare directory is named
    by its last path part, or by as many trailing parts as it takes to tell two apart."""
    pairs = [arg.split("=", 1) if "=" in arg and not Path(arg).exists() else [None, arg]
             for arg in args]
    paths = [Path(d).resolve() for _, d in pairs]
    if len(set(paths)) < len(paths):
        raise UserError(f"MODEL_DIR: a directory is given twice ({' '.join(args)})")
    depth = 1
    while True:
        names = [name or "/".join(p.parts[-depth:]) for (name, _), p in zip(pairs, paths)]
        if len(set(names)) == len(names):
            return [(name, d) for name, (_, d) in zip(names, pairs)]
        if depth > max(len(p.parts) for p in paths):
            raise UserError(f"MODEL_DIR: two models are named alike ({', '.join(names)}); "
                            "name them apart as NAME=MODEL_DIR")
        depth += 1


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a UserError naming the address (taken, not ours, no permission)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port: must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise UserError(f"--host/--port: cannot listen on {host}:{port} "
                        f"({e.strerror or e})") from None


def main(argv) -> int:
    args = parser().parse_args(argv)
    config = ServeConfig(**{f.name: getattr(args, f.name)
                            for f in dataclasses.fields(ServeConfig)}).check()
    try:
        import uvicorn

        from seq2seq.serve.app import create_app
    except ImportError as e:
        raise UserError(f"seq2seq-serve needs the serve extra ({e.name} is not installed): "
                        "pip install -e \".[serve]\"") from None
    from seq2seq.serve.engine import Engine
    models = named_dirs(args.model_dirs)
    for _, d in models:
        if not Path(d).is_dir():
            raise UserError(f"{d}: not a model directory (no such directory)")
    engines = [Engine.load(d, name, args.device, args.weights, args.precision) for name, d in models]
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"seq2seq-serve: {url} serving " +
          ", ".join(f"{e.name} ({e.task})" for e in engines), flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(engines, config), log_level="info"))
    server.run(sockets=[sock])
    # uvicorn re-raises a captured Ctrl-C after its graceful shutdown (-> 130 in cli/common.py); where
    # that re-raise is lost (seen once in the tests), the exit status still says it was interrupted
    return 130 if signal.SIGINT in getattr(server, "_captured_signals", ()) else 0


def entry() -> None:
    run(main)


if __name__ == "__main__":
    entry()
