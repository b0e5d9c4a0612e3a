"""Micro-batching: the prompts of concurrent requests go to the scorer in one call.

Requests wait in a queue; one worker scores their prompts together on one thread (the model is
not shared between threads) and hands every request its own scores. Two ways to fill a call:

* ``admission="continuous"`` (the default): every call takes at most ``max_batch_prompts``
  prompts, shared out round-robin among all unfinished requests (the oldest first), and a
  request that arrives while a call runs joins the next one, even when an earlier request
  still has prompts left. A one-candidate request never waits behind the whole of a
  100-candidate one, and a request is answered as soon as its last prompt is scored.
* ``admission="request"``: whole requests, as many as fit ``max_batch_prompts`` (a larger
  request goes alone), after waiting up to ``max_wait_s`` for more after the first.

With ``enabled=False`` it scores one request per call, in arrival order (the baseline of the
load test). ``close()`` stops new work and finishes everything already queued; ``drain(grace)`` (a server's shutdown)
stops new work, gives the requests in flight ``grace`` seconds, then answers the rest ``ShuttingDown`` and stops
the scoring call under way (``on_abort``).

>>> import asyncio, numpy as np
>>> async def demo():
...     b = MicroBatcher(lambda ps: np.arange(len(ps), dtype=float), max_batch_prompts=8, max_wait_s=0.01)
...     await b.start()
...     out = await asyncio.gather(b.submit(["a", "b"]), b.submit(["c"]))
...     await b.close()
...     return [o.tolist() for o in out], b.stats()["batches"]
>>> asyncio.run(demo())
([[0.0, 1.0], [2.0]], 1)

A long request shares each call with the requests that arrive after it:

>>> async def mixed():
...     calls = []
...     def score(ps):
...         calls.append(list(ps))
...         return np.zeros(len(ps))
...     b = MicroBatcher(score, max_batch_prompts=4, max_wait_s=0)
...     await b.start()
...     await asyncio.gather(b.submit(list("abcdefgh")), b.submit(["x"]))
...     await b.close()
...     return calls
>>> asyncio.run(mixed())
[['a', 'b', 'c', 'x'], ['d', 'e', 'f', 'g'], ['h']]
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["ADMISSIONS", "MicroBatcher", "ShuttingDown"]

ADMISSIONS = ("continuous", "request")


class ShuttingDown(RuntimeError):
    """The batcher is closing and takes no new requests."""


@dataclass
class _Job:
    prompts: Sequence[Any]
    future: asyncio.Future
    taken: int = 0  # prompts handed to a scoring call so far (continuous admission)
    scored: int = 0
    scores: np.ndarray | None = None

    @property
    def left(self) -> int:
        return len(self.prompts) - self.taken


class MicroBatcher:
    """Gathers the prompts of concurrent requests into one scoring call (see the module docs)."""

    def __init__(self, score: Callable[[list[Any]], np.ndarray], *, max_batch_prompts: int = 64,
                 max_wait_s: float = 0.005, enabled: bool = True, on_abort: Callable[[], None] | None = None,
                 admission: Literal["continuous", "request"] = "continuous"):
        if admission not in ADMISSIONS:
            raise ValueError(f"admission must be one of {ADMISSIONS}, not {admission!r}")
        self.admission = admission
        self._score = score
        self._on_abort = on_abort  # stops the scoring call under way (it raises ShuttingDown at its next batch)
        self._current: list[_Job] = []  # the batch being scored
        self.max_batch_prompts = max_batch_prompts
        self.max_wait_s = max_wait_s
        self.enabled = enabled
        self._jobs: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._counts = {"requests": 0, "prompts": 0, "batches": 0, "max_batch_prompts_seen": 0, "errors": 0}
        self._busy_s = 0.0

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmrec-scorer")
        self._worker = asyncio.create_task(self._run(), name="llmrec-batcher")

    async def submit(self, prompts: Sequence[Any]) -> np.ndarray:
        """Scores of ``prompts`` (in order), scored together with other requests' prompts."""
        if self._closing or self._worker is None:
            raise ShuttingDown("the service is shutting down")
        if not len(prompts):
            return np.zeros(0)
        job = _Job(prompts, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._wake.set()
        return await job.future

    async def close(self) -> None:
        """Take no new requests; score every queued one, then stop the worker."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._worker is not None:
            await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def drain(self, grace: float) -> bool:
        """Take no new requests; give the queued and running ones ``grace`` seconds, then answer every one still
        waiting ``ShuttingDown`` (a 503) and stop the scoring call under way. True when all finished in time."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        deadline = time.perf_counter() + grace
        while (self._jobs or self._current) and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        if not (self._jobs or self._current):
            return True
        late = ShuttingDown(f"the service is shutting down; the request was not finished within the {grace:g} s "
                            "grace period")
        for job in [*self._jobs, *self._current]:
            if not job.future.done():
                job.future.set_exception(late)
        self._jobs.clear()
        if self._on_abort is not None:
            self._on_abort()
        return False

    def stats(self) -> dict[str, Any]:
        c = dict(self._counts)
        c["queued_requests"] = len(self._jobs)
        c["mean_batch_prompts"] = round(c["prompts"] / c["batches"], 3) if c["batches"] else None
        c["busy_s"] = round(self._busy_s, 3)
        c["micro_batching"] = self.enabled
        c["admission"] = self.admission
        return c

    # ------------------------------------------------------------------ worker
    async def _gather(self) -> None:
        """Wait (at most max_wait_s) until the queue holds a full batch."""
        deadline = time.perf_counter() + self.max_wait_s
        while sum(len(j.prompts) for j in self._jobs) < self.max_batch_prompts and not self._closing:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take_step(self) -> list[tuple[_Job, int, int]]:
        """Continuous admission: up to ``max_batch_prompts`` prompts, one per unfinished request in turn (the
        oldest first), as (job, start, end) slices; requests whose client went away give up their turn."""
        for job in [j for j in self._jobs if j.future.done()]:
            self._jobs.remove(job)
        jobs = [j for j in self._jobs if j.left]
        counts = [0] * len(jobs)
        room = self.max_batch_prompts
        while room and jobs:
            progressed = False
            for i, job in enumerate(jobs):
                if room and counts[i] < job.left:
                    counts[i] += 1
                    room -= 1
                    progressed = True
            if not progressed:
                break
        slices = []
        for job, k in zip(jobs, counts):
            if k:
                slices.append((job, job.taken, job.taken + k))
                job.taken += k
        return slices

    def _take(self) -> list[_Job]:
        batch = [self._jobs.popleft()]
        if not self.enabled:
            return batch
        n = len(batch[0].prompts)
        while self._jobs and n + len(self._jobs[0].prompts) <= self.max_batch_prompts:
            job = self._jobs.popleft()
            batch.append(job)
            n += len(job.prompts)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            if self.enabled and self.admission == "continuous":
                if not any(j.taken for j in self._jobs) and self.max_wait_s > 0:
                    await self._gather()  # an idle worker waits for company; a busy one goes on at once
                await self._step(loop)
                continue
            if self.enabled and self.max_wait_s > 0:
                await self._gather()
            batch = self._take()
            prompts = [p for job in batch for p in job.prompts]
            scores = await self._call(loop, prompts, batch)
            if scores is None:
                continue
            self._counts["requests"] += len(batch)
            start = 0
            for job in batch:
                if not job.future.done():  # a client that went away cancels only its own future
                    job.future.set_result(np.asarray(scores[start : start + len(job.prompts)]))
                start += len(job.prompts)

    async def _call(self, loop: asyncio.AbstractEventLoop, prompts: list[Any], jobs: list[_Job]) -> np.ndarray | None:
        """Score ``prompts`` (of ``jobs``) on the scorer's thread; None when it failed: then every one of ``jobs``
        gets the error."""
        self._current = jobs
        t0 = time.perf_counter()
        try:
            scores = np.asarray(await loop.run_in_executor(self._executor, self._score, prompts))
        except Exception as exc:
            self._counts["errors"] += 1
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return None
        finally:
            self._current = []
            self._busy_s += time.perf_counter() - t0
        self._counts["prompts"] += len(prompts)
        self._counts["batches"] += 1
        self._counts["max_batch_prompts_seen"] = max(self._counts["max_batch_prompts_seen"], len(prompts))
        return scores

    async def _step(self, loop: asyncio.AbstractEventLoop) -> None:
        """One scoring call of continuous admission; answers every request whose last prompt it scored."""
        slices = self._take_step()
        if not slices:
            return
        jobs = [job for job, _, _ in slices]
        scores = await self._call(loop, [p for job, start, end in slices for p in job.prompts[start:end]], jobs)
        if scores is None:  # every request with a prompt in the call got the error
            for job in jobs:
                if job in self._jobs:
                    self._jobs.remove(job)
            return
        at = 0
        for job, start, end in slices:
            if job.scores is None:
                job.scores = np.empty(len(job.prompts), dtype=scores.dtype)
            job.scores[start:end] = scores[at : at + end - start]
            job.scored += end - start
            at += end - start
            if job.scored == len(job.prompts):
                if job in self._jobs:
                    self._jobs.remove(job)
                self._counts["requests"] += 1
                if not job.future.done():
                    job.future.set_result(job.scores)
