"""The event stream as an endless sequence of vectorised batches, fully determined by the seed.

A batch covers one slice of event time ``[t0, t1)`` (sized to hold ~``batch_size`` events): legit
events are drawn as arrays, fraud episodes are injected, malformed slots are chosen, and everything is
sorted by event time. Fraud events that fall past ``t1`` wait for the next batch, so event time never
goes backwards across the stream. Nothing here depends on the wall clock, the rate limit or the sink,
which is why the same seed and start time give a byte-identical stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime

import numpy as np

from generator.model import ATM, F8, I8, ONLINE, World, build_world
from generator.patterns import AVERAGE_EPISODE_EVENTS, inject, legit_amounts
from generator.schedule import LegitSchedule

DEFAULT_BATCH_SIZE = 10_000
MIN_BATCH_SIZE = 20
CHANNEL_WEIGHTS = (0.70, 0.25, 0.05)  # pos, online, atm for legit traffic
# Malformed kinds (index + 1 is the code in a batch); see generator.malformed.
MALFORMED_KINDS: tuple[str, ...] = ("bad_json", "missing_field", "wrong_type", "negative_amount")


@dataclass
class Batch:
    """Column arrays, one row per message, in event-time order."""

    time: F8  # epoch seconds (UTC)
    customer: I8
    store: I8
    amount: F8
    channel: I8
    lat: F8
    lon: F8
    pattern: I8  # 0 = legit, else 1-based index into FRAUD_PATTERNS
    episode: I8  # -1 = legit
    malformed: I8  # 0 = valid, else 1-based index into MALFORMED_KINDS

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def take(self, index: I8 | slice) -> Batch:
        return Batch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        return Batch(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Batch)})


def _empty() -> Batch:
    f8, i8 = np.empty(0), np.empty(0, dtype=np.int64)
    return Batch(f8, i8, i8, f8, i8, f8, f8, i8, i8, i8)


class TransactionStream:
    """Iterate :meth:`batches`; ``world`` is public so encoders and tests can look profiles up."""

    def __init__(self, *, seed: int, customers: int, stores: int, fraud_rate: float, malformed_rate: float,
                 start_time: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        world_seq, time_seq, attr_seq, fraud_seq, bad_seq = np.random.SeedSequence(seed).spawn(5)
        self.world: World = build_world(np.random.default_rng(world_seq), customers, stores)
        self._start_ts = start_time.timestamp()
        self._schedule = LegitSchedule(self.world, self._start_ts, np.random.default_rng(time_seq))
        self._attr_rng = np.random.default_rng(attr_seq)
        self._fraud_rng = np.random.default_rng(fraud_seq)
        self._bad_rng = np.random.default_rng(bad_seq)
        self._fraud_rate = fraud_rate
        self._malformed_rate = malformed_rate
        self._window_s = self.effective_batch_size(batch_size, customers, fraud_rate) / self._schedule.events_per_second
        self._blocked_until = np.full(customers, -np.inf)
        self._pending = _empty()
        self.generated = 0
        self.fraud_generated = 0
        self.episodes = 0

    @property
    def expected_events_per_event_second(self) -> float:
        """Messages per second of event time (legit traffic plus the injected fraud share)."""
        return self._schedule.events_per_second / max(1e-9, 1.0 - self._fraud_rate)

    @staticmethod
    def effective_batch_size(batch_size: int, customers: int, fraud_rate: float) -> int:
        """Smaller batches when the episodes a batch needs would exceed half its customers.

        A customer has at most one episode per batch, so a few customers at a high fraud rate need
        shorter event-time slices to reach the rate; the default world (1,000 customers, 2%) is not
        affected.
        """
        if fraud_rate <= 0:
            return batch_size
        capacity = 0.5 * customers * AVERAGE_EPISODE_EVENTS * (1.0 - fraud_rate) / fraud_rate
        return max(MIN_BATCH_SIZE, min(batch_size, int(capacity)))

    def _legit(self, times: F8, customers: I8) -> Batch:
        world, rng = self.world, self._attr_rng
        n = times.shape[0]
        pick = (rng.random(n) * world.n_preferred[customers]).astype(np.int64)
        category = world.preferred[customers, pick]
        channel = np.searchsorted(np.cumsum(CHANNEL_WEIGHTS), rng.random(n), side="right").astype(np.int64)
        channel = np.minimum(channel, ATM)
        local_store = world.pick_city_store(rng, customers, category)
        online_store = world.pick_category_store(rng, category)
        online = channel == ONLINE
        store = np.where(online, online_store, local_store)
        amount = legit_amounts(world, rng, customers)
        atm = channel == ATM
        amount[atm] = np.maximum(20.0, np.floor(amount[atm] / 10.0) * 10.0)
        lat = np.where(online, world.home_lat[customers], world.store_lat[store])
        lon = np.where(online, world.home_lon[customers], world.store_lon[store])
        zeros = np.zeros(n, dtype=np.int64)
        return Batch(times, customers, store, amount, channel, lat, lon, zeros, zeros - 1, zeros.copy())

    def batches(self) -> Iterator[Batch]:
        t0 = self._start_ts
        while True:
            t1 = t0 + self._window_s
            yield self._next_batch(t1)
            t0 = t1

    def _next_batch(self, t1: float) -> Batch:
        times, customers = self._schedule.until(t1)
        keep = times > self._blocked_until[customers]
        legit = self._legit(times[keep], customers[keep])

        # Fraud: enough episodes to bring the running fraud share back to the target rate.
        expected_total = self.generated + len(legit) / max(1e-9, 1.0 - self._fraud_rate)
        wanted_events = self._fraud_rate * expected_total - self.fraud_generated
        n_episodes = max(0, round(wanted_events / AVERAGE_EPISODE_EVENTS)) if self._fraud_rate > 0 else 0
        injection = inject(self.world, self._fraud_rng, legit.time, legit.customer, legit.lat, legit.lon,
                           n_episodes, self._blocked_until, self.episodes)
        self.episodes += injection.anchors.shape[0]
        protected = np.zeros(len(legit), dtype=bool)
        protected[injection.anchors] = True
        kept = ~injection.drop_legit
        legit, protected = legit.take(np.flatnonzero(kept)), protected[kept]
        legit.malformed = self._malformed(protected)
        n_fraud = injection.time.shape[0]
        fraud = Batch(injection.time, injection.customer, injection.store, injection.amount, injection.channel,
                      injection.lat, injection.lon, injection.pattern, injection.episode,
                      np.zeros(n_fraud, dtype=np.int64))
        self.generated += len(legit) + n_fraud
        self.fraud_generated += n_fraud

        merged = Batch.concat([self._pending, legit, fraud])
        order = np.lexsort((merged.customer, merged.time))
        merged = merged.take(order)
        ready = int(np.searchsorted(merged.time, t1, side="left"))
        self._pending = merged.take(slice(ready, None))
        return merged.take(slice(0, ready))

    def _malformed(self, protected: np.ndarray) -> I8:
        """Malformed slots, only on legit non-anchor events (so fraud episodes stay intact)."""
        n = protected.shape[0]
        u = self._bad_rng.random(n)
        kinds = self._bad_rng.integers(1, len(MALFORMED_KINDS) + 1, n)
        share = self._malformed_rate / max(1e-9, 1.0 - self._fraud_rate)
        return np.where((u < share) & ~protected, kinds, 0).astype(np.int64)


__all__ = ["MALFORMED_KINDS", "Batch", "TransactionStream"]
