"""When legit transactions happen: one renewal process per customer, inside its active hours.

Each customer's clock runs in *active seconds* (only the seconds inside its daily active window
count). Gaps between its transactions are ``LEGIT_MIN_GAP_S + Exp(mean)`` active seconds, and the map
from active seconds to UTC is monotonic and never shrinks a gap, so in event time two consecutive
legit transactions of a customer are always >= 10 min apart and never outside [06:00, 23:00) UTC.
That is the timing half of the "legit never looks like fraud" guarantee.
"""

from __future__ import annotations

import numpy as np

from generator.model import F8, I8, World
from generator.pattern_rules import LEGIT_MIN_GAP_S

MEAN_GAP_ACTIVE_S = 4 * 3600.0  # ~3.5 legit transactions per customer and day
DAY_S = 86400.0


class LegitSchedule:
    """Per-customer next transaction times; :meth:`until` drains everything before a time."""

    def __init__(self, world: World, start_ts: float, rng: np.random.Generator) -> None:
        self._rng = rng
        self._start_s = world.active_start_s
        self._length = world.active_end_s - world.active_start_s
        self._base = np.floor(start_ts / DAY_S) * DAY_S  # UTC midnight of the start day
        tod = start_ts - self._base
        length = self._length
        v0 = np.where(tod < self._start_s, 0.0, np.where(tod < world.active_end_s, tod - self._start_s, length))
        self._virtual: F8 = v0 + rng.exponential(MEAN_GAP_ACTIVE_S, world.n_customers)
        self._next: F8 = self._to_utc(np.arange(world.n_customers), self._virtual)

    @property
    def events_per_second(self) -> float:
        """Expected legit transactions per event-time second, all customers together."""
        return float(np.sum(self._length / DAY_S) / MEAN_GAP_ACTIVE_S)

    def _to_utc(self, customers: I8, virtual: F8) -> F8:
        length = self._length[customers]
        day = np.floor(virtual / length)
        return np.asarray(self._base + day * DAY_S + self._start_s[customers] + (virtual - day * length))

    def until(self, end_ts: float) -> tuple[F8, I8]:
        """All legit (time, customer) pairs before ``end_ts``, sorted by time."""
        times: list[F8] = []
        customers: list[I8] = []
        due = np.flatnonzero(self._next < end_ts)
        while due.size:
            times.append(self._next[due].copy())
            customers.append(due)
            self._virtual[due] += LEGIT_MIN_GAP_S + self._rng.exponential(MEAN_GAP_ACTIVE_S - LEGIT_MIN_GAP_S, due.size)
            self._next[due] = self._to_utc(due, self._virtual[due])
            due = due[self._next[due] < end_ts]
        if not times:
            return np.empty(0), np.empty(0, dtype=np.int64)
        all_times = np.concatenate(times)
        all_customers = np.concatenate(customers).astype(np.int64)
        order = np.lexsort((all_customers, all_times))
        return all_times[order], all_customers[order]
