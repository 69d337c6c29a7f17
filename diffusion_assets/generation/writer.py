"""Write a batch's PNGs while the next batch generates (issue 9 item 9).

Encoding a 1024² PNG costs ~0.33 s of one CPU core (Pillow, zlib level 6); on an H200, SDXL makes an
image in ~1 s and Flux-schnell in ~0.6 s (``benchmarks/results/gpu_h200.md``), so writing serially
would idle the GPU 30–55 % of the time. zlib and hashlib release the GIL, so a small thread pool
encodes, hashes and writes batch *k* while the pipeline makes batch *k + 1*.

What is written does not change: each image is encoded by the same function with the same row, and
rows are indexed in the caller's order, so the bytes equal a serial write's. At most two batches of
images are held (the one being written, the one just generated). A batch is indexed (``on_settled``)
only once all its files are written; a run killed between the two leaves complete PNGs that the next
run adopts from their embedded rows (``generation/leftovers.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WRITER_THREADS_ENV = "DIFFUSION_ASSETS_WRITER_THREADS"
WRITER_THREADS = 2
"""Threads that encode and write PNGs (``DIFFUSION_ASSETS_WRITER_THREADS`` overrides): two encode 1024²
images (~0.33 CPU s each) faster than an H200 makes them with SDXL or Flux-schnell (0.6–1 s each)."""


def writer_threads() -> int:
    """The writer pool's size: ``DIFFUSION_ASSETS_WRITER_THREADS`` if set (a positive integer), else 2."""
    value = os.environ.get(WRITER_THREADS_ENV, "")
    if not value:
        return WRITER_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"{WRITER_THREADS_ENV}={value!r}: expected a positive integer (default {WRITER_THREADS})"
        )
    return int(value)


class BatchWriter(Generic[T, R]):
    """``submit(items)`` starts ``write(item)`` for each item on the pool and then settles the batch
    submitted before it: waits for its writes and calls ``on_settled(results)`` with them in item
    order. ``close()`` (or leaving the ``with`` block) settles what is left. An exception raised by a
    write is raised again in the caller at the next settle. When the caller's own code raises inside
    the ``with`` block, running writes finish, queued ones are cancelled and nothing more is indexed:
    the PNGs written but not indexed are complete, and the next run adopts them from their rows.
    """

    def __init__(
        self,
        write: Callable[[T], R],
        on_settled: Callable[[list[R]], None],
        threads: int | None = None,
    ) -> None:
        self._write = write
        self._on_settled = on_settled
        self._pool = ThreadPoolExecutor(
            max_workers=threads or writer_threads(), thread_name_prefix="png-writer"
        )
        self._pending: list[list[Future[R]]] = []

    def submit(self, items: Sequence[T]) -> None:
        self._pending.append([self._pool.submit(self._write, item) for item in items])
        while len(self._pending) > 1:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        futures = self._pending.pop(0)
        self._on_settled([f.result() for f in futures])

    def close(self) -> None:
        try:
            while self._pending:
                self._settle_oldest()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BatchWriter[T, R]:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
            return
        # the caller failed: writes already running finish (no temp file is left behind), queued ones
        # are cancelled, and nothing more is indexed; the next run adopts the complete PNGs
        self._pool.shutdown(wait=True, cancel_futures=True)
