"""The HTTP app (Starlette): the JSON API and the static page, over a Batcher per model.

    GET  /              the page (seq2seq/serve/static/index.html)
    GET  /healthz       {"status": "ok", "models": N}
    GET  /v1/models     {"models": [{"name", "task", "endpoint", "beam_size", "copy", ...}], "limits": {...}}
    POST /v1/translate  {"text": [...], "beam_size": 5, "nbest": 1, "attention": false, "model": "name"}
    POST /v1/summarize  the same, for summarisation models

A search answers {"model", "beam_size", "nbest", "outputs", "scores"}: outputs[i] and scores[i]
are the (up to) nbest outputs of text[i], best first; with "attention": true also attention[i][k],
the matrix of output k of text[i] with its source and output pieces (seq2seq/serve/engine.py).

Every error is JSON, {"error": "field: what is wrong", "field": "field"}: 400 for a body that is
not a JSON object, 413 for too many texts or characters (or too large a body), 422 for a field
of the wrong type or range, 404/405 for a wrong path or method, 500 if a search fails (the
server goes on).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from seq2seq.serve.batching import Batcher
from seq2seq.serve.engine import Engine
from seq2seq.serve.requests import RequestError, model_name, parse_json, parse_search
from seq2seq.serve.settings import ServeConfig

STATIC = Path(__file__).parent / "static"
ENDPOINTS = {"translation": "/v1/translate", "summarization": "/v1/summarize"}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(None, f"the body is over {limit} bytes (raise --max-chars for more)", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(None, f"the body is over {limit} bytes (raise --max-chars for more)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(engines: list[Engine], config: ServeConfig = ServeConfig()) -> Starlette:
    """The app serving `engines` (names unique); searches run in one worker thread."""
    by_name = {e.name: e for e in engines}
    if len(by_name) != len(engines):
        raise ValueError(f"model names must be unique, got {[e.name for e in engines]}")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2seq-search")
    batchers = {e.name: Batcher(e.run, executor, config.batch_wait_ms / 1000,
                                config.max_batch_sentences) for e in engines}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for b in batchers.values():
            b.start()
        yield
        for b in batchers.values():
            await b.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    def pick(name: str | None, task: str) -> Engine:
        """The named model, which must be of `task`; None: the first model of `task`."""
        if name is None:
            for engine in engines:
                if engine.task == task:
                    return engine
            raise RequestError("model", f"this server has no {task} model (served: "
                                        f"{', '.join(f'{e.name} ({e.task})' for e in engines)})", 404)
        if name not in by_name:
            raise RequestError("model", f"unknown model {name[:100]!r} (served: {', '.join(by_name)})", 404)
        engine = by_name[name]
        if engine.task != task:
            raise RequestError("model", f"{name!r} is a {engine.task} model: POST to "
                                        f"{ENDPOINTS[engine.task]}")
        return engine

    async def search(request: Request, task: str) -> JSONResponse:
        data = parse_json(await read_body(request, config.max_body_bytes))
        engine = pick(model_name(data), task)
        req = parse_search(data, config, engine.default_beam)
        results = (await batchers[engine.name].submit(req.text, req.beam_size, req.nbest, req.attention)
                   if req.text else [])
        body = {"model": engine.name, "beam_size": req.beam_size, "nbest": req.nbest,
                "outputs": [[h["output"] for h in hyps] for hyps in results],
                "scores": [[h["score"] for h in hyps] for hyps in results]}
        if req.attention:
            body["attention"] = [[h["attention"] for h in hyps] for hyps in results]
        return JSONResponse(body)

    async def translate(request: Request) -> JSONResponse:
        return await search(request, "translation")

    async def summarize(request: Request) -> JSONResponse:
        return await search(request, "summarization")

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"models": [e.describe() for e in engines], "limits": config.limits()})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "models": len(engines)})

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail, "field": None}, status_code=exc.status_code,
                            headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette raises `exc` again after this answer, so the server's log shows the traceback
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}", "field": None},
                            status_code=500)

    routes = [Route("/", index), Route("/healthz", healthz), Route("/v1/models", models),
              Route("/v1/translate", translate, methods=["POST"]),
              Route("/v1/summarize", summarize, methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={RequestError: request_error, HTTPException: http_error,
                                        Exception: server_error})
    app.state.batchers = batchers  # by model name: their `rounds` count the searches run
    return app
