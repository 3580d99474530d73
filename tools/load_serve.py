"""Load a seq2seq-serve server from 1, 8 and 32 concurrent clients: requests/s, p50/p95 latency.

    python tools/load_serve.py MODEL_DIR [--input FILE] [--clients 1,8,32] [--requests 300]
                               [--seconds 30] [--beam-size N] [--sentences-per-request 1]
    python tools/load_serve.py --url http://127.0.0.1:8080 [...]      # a server already running

With MODEL_DIR it starts `seq2seq-serve MODEL_DIR --port 0` on 127.0.0.1 (extra server flags
after `--`, e.g. `-- --batch-wait-ms 10`) and stops it at the end. Traffic only ever goes to this
machine: a --url whose host is not a loopback address is refused. Each level sends at most
--requests requests and runs at most --seconds seconds; each client sends one request at a
time, cycling through the input lines (default: a few sentences written below). Only answers
with status 200 count in the figures; the others are counted as errors.

Run it with nothing else on the machine: the figures are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

SENTENCES = ["A man in a blue shirt is standing on a ladder.", "Two dogs play in the snow.",
             "A little girl climbs into a wooden playhouse.", "tuesday, march 3, 2015",
             "A group of people are sitting at a table in a restaurant.", "12/25/99"]


def loopback(url: str) -> str:
    """The url without a trailing slash, if its host is this machine; else exit with a message."""
    host = urlsplit(url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        sys.exit(f"error: --url: {host or url!r} is not a loopback address (127.0.0.1, ::1, localhost)")
    return url.rstrip("/")


@contextmanager
def started_server(args: list[str], log=None, env: dict | None = None):
    """`seq2seq-serve ARGS --host 127.0.0.1 --port 0` in a new process, its stderr to the file
    `log` (default a temporary one); yields (base url, process) once /healthz answers, and
    terminates it at the end. RuntimeError with the server's last words if it does not start."""
    log = log or tempfile.TemporaryFile(mode="w+")
    cmd = [sys.executable, "-m", "seq2seq.cli.serve", *args, "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        line = proc.stdout.readline()  # "seq2seq-serve: http://127.0.0.1:PORT/ serving ..."
        url = line.split()[1].rstrip("/") if line.startswith("seq2seq-serve: ") else None
        for _ in range(600 if url else 0):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            proc.kill()
            proc.wait()
            log.seek(0)
            raise RuntimeError(f"the server did not start: {log.read().strip()[-2000:]}")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def level(url: str, endpoint: str, payload: dict, texts: list[list[str]], clients: int,
                max_requests: int, max_seconds: float) -> dict:
    """`clients` concurrent clients until max_requests are sent or max_seconds have passed."""
    latencies, errors = [], 0
    cycle = itertools.cycle(texts)
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def client(http: httpx.AsyncClient):
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            start = time.perf_counter()
            r = await http.post(url + endpoint, json={**payload, "text": next(cycle)})
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=max_seconds + 60) as http:
        begin = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    ms = sorted(1000 * x for x in latencies)
    pct = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"clients": clients, "requests": len(ms), "errors": errors,
            "requests_per_s": len(ms) / elapsed, "p50_ms": pct[49] if ms else float("nan"),
            "p95_ms": pct[94] if ms else float("nan")}


def run(url: str, args) -> list[dict]:
    info = httpx.get(f"{url}/v1/models", timeout=30).json()
    model = info["models"][0]
    lines = SENTENCES
    if args.input:
        with open(args.input, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in itertools.islice(f, 5000) if line.strip()]
    n = args.sentences_per_request
    texts = [lines[i:i + n] for i in range(0, len(lines) - n + 1, n)] or [lines[:n]]
    payload = {"model": model["name"]} | ({"beam_size": args.beam_size} if args.beam_size else {})
    httpx.post(url + model["endpoint"], json={**payload, "text": texts[0]}, timeout=60)  # warm up
    print(f"model {model['name']} ({model['task']}) at {url}, {n} sentence(s) per request, "
          f"beam {args.beam_size or model['beam_size']}")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    rows = []
    for clients in args.clients:
        row = asyncio.run(level(url, model["endpoint"], payload, texts, clients, args.requests,
                                args.seconds))
        rows.append(row)
        print(f"{row['clients']:>7} {row['requests']:>8} {row['errors']:>6} "
              f"{row['requests_per_s']:>8.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}", flush=True)
    return rows


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir", nargs="?", help="start seq2seq-serve on this model directory")
    p.add_argument("--url", help="a running server on this machine instead")
    p.add_argument("--input", help="sentences to send, one per line (the first 5,000 are used)")
    p.add_argument("--clients", default="1,8,32", type=lambda s: [int(c) for c in s.split(",")])
    p.add_argument("--requests", type=int, default=300, help="at most this many per level")
    p.add_argument("--seconds", type=float, default=30.0, help="at most this long per level")
    p.add_argument("--beam-size", type=int, help="default: the model's")
    p.add_argument("--sentences-per-request", type=int, default=1)
    args = p.parse_args(argv)
    if (args.model_dir is None) == (args.url is None):
        p.error("give MODEL_DIR or --url (one of them)")
    if min(args.clients) < 1 or args.requests < 1 or args.seconds <= 0 or args.sentences_per_request < 1:
        p.error("--clients, --requests, --seconds and --sentences-per-request must be positive")
    if args.url:
        run(loopback(args.url), args)
        return 0
    try:
        with started_server([args.model_dir, *flags]) as (url, _):
            run(url, args)
    except RuntimeError as e:
        sys.exit(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
