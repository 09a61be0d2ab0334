"""Micro-batching: concurrent requests' texts gathered into one forward, run off the event loop.

Each request `submit`s its items (texts or (text, pair) tuples) and awaits a future. One worker task takes
the first waiting request, then keeps taking requests until the batch holds `max_batch` items or `max_wait_ms`
have passed since that first one; a request that would overflow the batch waits for the next one (a request
is never split, so one larger than `max_batch` runs alone). The batch runs as one call of `predict` per input
kind (single texts, pairs) in a one-thread executor (loop.run_in_executor), so the event loop keeps accepting
and answering requests meanwhile, and each request's future gets its own slice of every task's predictions.
While a forward runs, new requests queue up and form the next batch.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

Predict = Callable[[list], dict[str, list]]  # items -> {task: one prediction per item}


@dataclass
class _Job:
    items: list
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the batcher did: requests answered, model calls (forwards), items, the largest batch."""

    requests: int = 0
    forwards: int = 0
    items: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # items per forward, the last 1000

    def as_dict(self) -> dict:
        mean = self.items / self.forwards if self.forwards else 0.0
        return {"requests": self.requests, "forwards": self.forwards, "items": self.items,
                "largest_batch": self.largest, "mean_batch": round(mean, 2)}  # fmt: skip


class MicroBatcher:
    """Gathers concurrent `submit` calls into batches of up to `max_batch` items, waiting at most
    `max_wait_ms` after the first; `predict(items)` runs in a worker thread. Start and stop it on the
    serving loop (`start`/`stop`; `submit` starts it when needed)."""

    def __init__(self, predict: Predict, max_batch: int = 32, max_wait_ms: float = 5.0):
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch: {max_batch!r} must be an integer >= 1")
        if not isinstance(max_wait_ms, (int, float)) or max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: {max_wait_ms!r} must be a number >= 0")
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._held: _Job | None = None  # a request that did not fit the last batch: first of the next

    def start(self) -> None:
        """Start the worker task on the running loop (again after `stop`)."""
        if self._task is not None and not self._task.done():
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obert-forward")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="obert-microbatcher")

    async def stop(self) -> None:
        """Cancel the worker; requests still waiting get a RuntimeError."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        pending = [self._held] if self._held else []
        self._held = None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(self, items: Sequence) -> dict[str, list]:
        """{task: predictions} for `items` (all of one kind), computed in a batch with other requests."""
        if self._task is None or self._task.done():
            self.start()
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _next_batch(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = self._held if self._held is not None else await self._queue.get()
        self._held = None
        batch, size = [first], len(first.items)
        deadline = loop.time() + self.max_wait
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except (asyncio.TimeoutError, TimeoutError):
                    break
            if size + len(job.items) > self.max_batch:
                self._held = job  # never split a request: it opens the next batch
                break
            batch.append(job)
            size += len(job.items)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [job for job in await self._next_batch() if not job.future.done()]  # done: client gone
            groups: dict[bool, list[_Job]] = {}
            for job in batch:  # single texts and pairs are encoded differently: one forward each
                groups.setdefault(isinstance(job.items[0], (tuple, list)), []).append(job)
            for jobs in groups.values():
                items = [item for job in jobs for item in job.items]
                try:
                    out = await loop.run_in_executor(self._executor, self.predict, items)
                except Exception as exc:  # a bug or a model failure: every request of the batch gets it
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                self._count(len(jobs), len(items))
                start = 0
                for job in jobs:
                    end = start + len(job.items)
                    if not job.future.done():
                        job.future.set_result({task: preds[start:end] for task, preds in out.items()})
                    start = end

    def _count(self, requests: int, items: int) -> None:
        s = self.stats
        s.requests += requests
        s.forwards += 1
        s.items += items
        s.largest = max(s.largest, items)
        s.sizes = [*s.sizes[-999:], items]
