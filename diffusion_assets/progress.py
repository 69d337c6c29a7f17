"""Progress lines for long loops, throttled: each line a Dagster run logs is a row in its event log."""

from __future__ import annotations

import time
from collections.abc import Callable


class ThrottledProgress:
    """Calls ``emit(done, total)`` for the first and last step, and otherwise at most once per
    ``every_s`` seconds, so a partition of thousands of batches writes a few dozen log rows."""

    def __init__(
        self,
        emit: Callable[[int, int], None],
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.emit, self.every_s, self.clock = emit, every_s, clock
        self.last = clock()

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done in (1, total) or now - self.last >= self.every_s:
            self.last = now
            self.emit(done, total)
