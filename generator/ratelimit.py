"""Pacing to ``events_per_second``: send in small chunks, each when its first event is due.

Chunks of ~20 ms worth of events keep the achieved rate within a few percent over any few seconds
without a per-event sleep. If the sender falls behind by more than a second (a broker stall), the
schedule restarts instead of bursting to catch up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CHUNK_SECONDS = 0.02
MAX_BACKLOG_S = 1.0
UNLIMITED_CHUNK = 1 << 30


class RateLimiter:
    def __init__(self, events_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._eps = events_per_second
        self._clock = clock
        self._origin: float | None = None
        self._origin_sent = 0

    @property
    def unlimited(self) -> bool:
        return self._eps <= 0

    def chunk_size(self) -> int:
        return UNLIMITED_CHUNK if self.unlimited else max(1, int(self._eps * CHUNK_SECONDS))

    def delay(self, sent: int) -> float:
        """Seconds to wait before sending the chunk that starts after ``sent`` events (0 = now)."""
        if self.unlimited:
            return 0.0
        now = self._clock()
        if self._origin is None:
            self._origin, self._origin_sent = now, sent
            return 0.0
        due = self._origin + (sent - self._origin_sent) / self._eps
        if now - due > MAX_BACKLOG_S:
            self._origin, self._origin_sent = now, sent
            return 0.0
        return max(0.0, due - now)
