"""Batching in seq2seq-serve with a scripted engine (its output is its input, upper-cased, with the
settings it was run with): requests that arrive together share one search, each gets its own
results, different settings run as separate searches, a full batch starts at once, a failing
search fails only its own requests, a client that went away is not searched for, and the server
answers while a search runs (the search is off the event loop)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (pip install -e '.[test]')")

from starlette.testclient import TestClient  # noqa: E402

from seq2seq.serve.app import create_app  # noqa: E402
from seq2seq.serve.batching import Batcher  # noqa: E402
from seq2seq.serve.settings import ServeConfig  # noqa: E402


class Scripted:
    """An engine whose output for 'abc' run with beam 2, nbest 1 is 'ABC/2/1'; records its calls;
    with `hold` set, each search waits until hold is released."""

    task, default_beam = "translation", 2

    def __init__(self, name: str = "scripted"):
        self.name, self.calls, self.fail = name, [], False
        self.hold: threading.Event | None = None

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "endpoint": "/v1/translate",
                "beam_size": self.default_beam, "copy": False}

    def run(self, lines, beam_size, nbest, attention):
        self.calls.append((list(lines), beam_size, nbest, attention))
        if self.hold is not None:
            assert self.hold.wait(10)
        if self.fail:
            raise RuntimeError("search failed")
        return [[{"output": f"{line.upper()}/{beam_size}/{nbest}", "score": -1.0}] for line in lines]


def batched(jobs, wait_s=0.2, max_sentences=100, engine=None, before=None):
    """Submit every job (lines, beam, nbest, attention) at once to a Batcher over a Scripted
    engine; returns (each job's results or exception, the engine's calls)."""
    engine = engine or Scripted()

    async def main():
        executor = ThreadPoolExecutor(1)
        batcher = Batcher(engine.run, executor, wait_s, max_sentences)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(*job)) for job in jobs]
        if before:
            await before(tasks)
        out = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        executor.shutdown()
        return out

    return asyncio.run(main()), engine.calls


def test_requests_that_arrive_together_share_one_search():
    results, calls = batched([(["ab"], 2, 1, False), (["c", "d"], 2, 1, False), (["e"], 2, 1, False)])
    assert calls == [(["ab", "c", "d", "e"], 2, 1, False)]
    assert [[r[0]["output"] for r in res] for res in results] == [["AB/2/1"], ["C/2/1", "D/2/1"], ["E/2/1"]]


def test_different_settings_are_searched_apart():
    jobs = [(["a"], 2, 1, False), (["b"], 1, 1, False), (["c"], 2, 2, False), (["d"], 2, 1, True),
            (["e"], 2, 1, False)]
    results, calls = batched(jobs)
    assert sorted(calls) == sorted([(["a", "e"], 2, 1, False), (["b"], 1, 1, False),
                                    (["c"], 2, 2, False), (["d"], 2, 1, True)])
    assert [res[0][0]["output"] for res in results] == ["A/2/1", "B/1/1", "C/2/2", "D/2/1", "E/2/1"]


def test_a_full_batch_starts_without_the_rest():
    jobs = [(["a", "b"], 2, 1, False), (["c", "d"], 2, 1, False), (["e", "f"], 2, 1, False)]
    results, calls = batched(jobs, wait_s=0.5, max_sentences=4)
    assert [c[0] for c in calls] == [["a", "b", "c", "d"], ["e", "f"]]
    assert results[2][1][0]["output"] == "F/2/1"


def test_a_failing_search_fails_its_requests_only():
    engine = Scripted()
    engine.fail = True
    results, _ = batched([(["a"], 2, 1, False), (["b"], 2, 1, False)], engine=engine)
    assert all(isinstance(r, RuntimeError) for r in results)
    engine.fail = False
    results, calls = batched([(["c"], 2, 1, False)], engine=engine)
    assert results == [[[{"output": "C/2/1", "score": -1.0}]]]


def test_a_request_whose_client_went_away_is_not_searched():
    async def cancel_second(tasks):
        await asyncio.sleep(0.05)  # all three are queued, the round still gathering
        tasks[1].cancel()

    results, calls = batched([(["a"], 2, 1, False), (["b"], 2, 1, False), (["c"], 2, 1, False)],
                             wait_s=0.3, before=cancel_second)
    assert calls == [(["a", "c"], 2, 1, False)]
    assert isinstance(results[1], asyncio.CancelledError)


def test_concurrent_http_requests_share_searches_and_get_their_own_results():
    engine = Scripted()
    with TestClient(create_app([engine], ServeConfig(batch_wait_ms=300))) as client:
        texts = [["ab"], ["cd", "ef"], ["g"], ["hi"], ["j"], ["k", "l"]]
        with ThreadPoolExecutor(len(texts)) as pool:
            bodies = list(pool.map(lambda t: client.post("/v1/translate", json={"text": t}).json(),
                                   texts))
        assert [b["outputs"] for b in bodies] == [[[f"{s.upper()}/2/1"] for s in t] for t in texts]
        assert client.app.state.batchers["scripted"].rounds == len(engine.calls) < len(texts)


def test_the_server_answers_while_a_search_runs():
    engine = Scripted()
    engine.hold = threading.Event()
    with TestClient(create_app([engine], ServeConfig(batch_wait_ms=0))) as client:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, "/v1/translate", json={"text": ["slow"]})
            for _ in range(200):  # until the search has started
                if engine.calls:
                    break
                threading.Event().wait(0.01)
            assert engine.calls and not pending.done()
            assert client.get("/healthz").json()["status"] == "ok"
            assert client.get("/v1/models").status_code == 200
            engine.hold.set()
            assert pending.result(timeout=10).json()["outputs"] == [["SLOW/2/1"]]
