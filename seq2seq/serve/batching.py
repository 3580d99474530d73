"""Requests that arrive together share one search, run off the event loop.

Each served model has a Batcher. A request puts its sentences on the model's queue and awaits a
future. The batcher's loop takes the first waiting request, then gathers others for up to
`wait_s` seconds (or until `max_sentences` sentences are gathered), groups the sentences by
search settings (beam size, n-best, attention: one search runs one setting), runs each group as
one call of `run` in a worker thread, and hands each request its own slice of the results.

While a search runs, new requests queue up; the next round takes them all at once. So under N
concurrent clients a round serves up to N requests in one batched search, and the event loop
stays free to answer /healthz, the page and new requests. Searches run one at a time in one
worker thread (shared by all models): on a CPU, two concurrent searches only contend for cores.

The model's results do not depend on the batch (seq2seq/search.py), so a sentence's output is
the same whether it was searched alone or with others.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

Key = tuple[int, int, bool]  # beam_size, nbest, attention
Run = Callable[[list[str], int, int, bool], list]  # Engine.run(lines, beam_size, nbest, attention)


@dataclass
class Job:
    lines: list[str]
    key: Key
    future: asyncio.Future


class Batcher:
    def __init__(self, run: Run, executor: Executor, wait_s: float, max_sentences: int):
        self.run, self.executor = run, executor
        self.wait_s, self.max_sentences = wait_s, max_sentences
        self.queue: asyncio.Queue[Job] | None = None  # made in the loop that serves (start())
        self.rounds = 0  # searches run so far, for tests and logs
        self._task: asyncio.Task | None = None
        self._round: list[Job] = []  # the jobs of the round being searched

    def start(self) -> None:
        """Begin serving in the running event loop (the app's lifespan calls this)."""
        self.queue = asyncio.Queue()
        self._task = asyncio.create_task(self._serve_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        waiting = []
        while self.queue is not None and not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        for job in self._round + waiting:  # nobody will answer these
            if not job.future.done():
                job.future.cancel()

    async def submit(self, lines: list[str], beam_size: int, nbest: int, attention: bool) -> list:
        """This request's results, one entry per line, once its round has run."""
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running (start() it in the app's lifespan)")
        job = Job(lines, (beam_size, nbest, attention), asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _gather(self) -> list[Job]:
        """The first waiting job and those that join it within the wait."""
        jobs = [await self.queue.get()]
        count = len(jobs[0].lines)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while count < self.max_sentences:
            if self.queue.empty():
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                job = self.queue.get_nowait()
            jobs.append(job)
            count += len(job.lines)
        return jobs

    async def _serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [job for job in await self._gather() if not job.future.done()]  # drop cancelled
            self._round = jobs
            groups: dict[Key, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for (beam, nbest, attention), group in groups.items():
                lines = [line for job in group for line in job.lines]
                try:
                    results = await loop.run_in_executor(self.executor, self.run, lines, beam,
                                                         nbest, attention)
                except Exception as e:  # the server goes on; each request of the group gets a 500
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(e)
                    continue
                finally:
                    self.rounds += 1
                start = 0
                for job in group:
                    if not job.future.done():  # a client that went away has cancelled its future
                        job.future.set_result(results[start:start + len(job.lines)])
                    start += len(job.lines)
