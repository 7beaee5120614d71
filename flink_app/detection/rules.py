"""Per-customer state and the five fraud rules, as pure functions over that state.

The state is what Flink keeps per ``customer_id`` (keyed ValueState, checkpointed): a short window
of recent transactions, running amount statistics (Welford), the last location and the categories
the customer has used. Rules read the state *before* the current transaction is added, so "the
customer's usual" never includes the transaction being judged.

Why a flat layout: Flink stores the state as bytes and the job reads and writes it on every event.
Pickling the dataclasses themselves cost ~18 us per event (dumps + loads, measured by
``bench/per_event_cost.py``), more than the rules; :meth:`CustomerState.to_flat` turns the state
into a tuple of plain values (``FLAT_LAYOUT``) that pickles in a few microseconds, and
:meth:`CustomerState.from_flat` rebuilds it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flink_app.events import Transaction

VELOCITY = "velocity_burst"
IMPOSSIBLE_TRAVEL = "impossible_travel"
HIGH_VALUE = "high_value"
CARD_TESTING = "card_testing"
UNUSUAL_HOUR_CATEGORY = "unusual_hour_category"
RULE_NAMES = (VELOCITY, IMPOSSIBLE_TRAVEL, HIGH_VALUE, CARD_TESTING, UNUSUAL_HOUR_CATEGORY)


@dataclass(frozen=True)
class RuleConfig:
    """Rule boundaries; defaults follow the generator's definitions (generator/pattern_rules.py).

    high_value: the generator labels amounts > 5 x the profile's p99 (drawn as 8-20 x p99) while legit
    amounts never exceed p99 (~4.4 x the mean for the widest profiles), so mean + 6 std with std
    floored at 0.75 x mean (>= 5.5 x mean) separates them even on a short, noisy history.
    unusual_hour_category: legit traffic never happens at 01-05 UTC, so the hour gate carries most of
    the rule; "large" is 3 x the running mean (the generator uses 4.5-7 x the profile mean).
    """

    velocity_count: int = 5  # >= this many txns (including the current one) ...
    velocity_window_s: float = 60.0  # ... within this many seconds
    travel_speed_kmh: float = 900.0  # implied speed above this is impossible
    travel_min_km: float = 100.0  # ignore GPS jitter / same-city moves
    high_value_sigmas: float = 6.0  # amount > mean + k * std ...
    high_value_min_history: int = 5  # ... once the customer has this many prior txns
    high_value_min_std_ratio: float = 0.75  # std floor as a fraction of the mean (short/flat histories)
    tiny_amount: float = 2.0  # card testing: amounts below this ...
    card_testing_count: int = 5  # ... at least this many ...
    card_testing_window_s: float = 600.0  # ... within this many seconds
    unusual_hours: tuple[int, int] = (1, 5)  # [start, end) hour of day, UTC
    unusual_min_history: int = 3  # need this many prior txns to call a category "never used"
    unusual_amount_ratio: float = 3.0  # "large": amount >= ratio * customer mean
    window_keep_s: float = 900.0  # how long recent txns stay in state


@dataclass(slots=True)
class Recent:
    """A recent transaction kept in state (enough to alert it retroactively)."""

    ts: float
    amount: float
    transaction_id: str
    event_time: str
    store_id: str
    model_score: float | None  # None until needed (see FraudScorer: computed lazily)
    alerted: bool = False
    features: tuple[float, ...] = ()

    def as_tuple(self) -> tuple[float, float, str, str, str, float | None, bool, tuple[float, ...]]:
        return (self.ts, self.amount, self.transaction_id, self.event_time, self.store_id, self.model_score,
                self.alerted, self.features)


#: Field order of :meth:`CustomerState.to_flat` (a stored layout: append fields, never reorder).
FLAT_LAYOUT = ("count", "mean", "m2", "last_ts", "last_lat", "last_lon", "categories", "recent")

FlatState = tuple[int, float, float, float | None, float | None, float | None, tuple[str, ...],
                  tuple[tuple[float, float, str, str, str, float | None, bool, tuple[float, ...]], ...]]


@dataclass(slots=True)
class CustomerState:
    """Everything the rules need about one customer; kept in Flink keyed state as :meth:`to_flat`."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    last_ts: float | None = None
    last_lat: float | None = None
    last_lon: float | None = None
    categories: set[str] = field(default_factory=set)
    recent: deque[Recent] = field(default_factory=deque)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def to_flat(self) -> FlatState:
        """The state as a tuple of plain values in :data:`FLAT_LAYOUT` order (cheap to pickle)."""
        return (self.count, self.mean, self.m2, self.last_ts, self.last_lat, self.last_lon,
                tuple(sorted(self.categories)), tuple(r.as_tuple() for r in self.recent))

    @classmethod
    def from_flat(cls, flat: FlatState) -> CustomerState:
        """Inverse of :meth:`to_flat`: ``CustomerState.from_flat(s.to_flat()) == s``."""
        count, mean, m2, last_ts, last_lat, last_lon, categories, recent = flat
        return cls(count, mean, m2, last_ts, last_lat, last_lon, set(categories),
                   deque(Recent(*entry) for entry in recent))


@dataclass(frozen=True)
class RuleHit:
    rule: str
    detail: str
    burst_ids: tuple[str, ...] = ()  # earlier transactions that belong to the same burst


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def hour_of_day(ts: float) -> int:
    return datetime.fromtimestamp(ts, tz=UTC).hour


def implied_speed_kmh(state: CustomerState, txn: Transaction) -> tuple[float, float]:
    """(distance km, speed km/h) from the previous transaction; (0, 0) for the first one."""
    return implied_speed(state.last_ts, state.last_lat, state.last_lon, txn.event_ts, txn.lat, txn.lon)


def implied_speed(last_ts: float | None, last_lat: float | None, last_lon: float | None, event_ts: float,
                  lat: float, lon: float) -> tuple[float, float]:
    """(distance km, speed km/h) from the last location (none: (0, 0))."""
    if last_ts is None or last_lat is None or last_lon is None:
        return 0.0, 0.0
    km = haversine_km(last_lat, last_lon, lat, lon)
    # |dt|: a late (out-of-order) event is as far in time from the last one as an early one; without
    # abs() every replayed or late event would look like a jump at infinite speed.
    hours = max(abs(event_ts - last_ts), 1.0) / 3600.0
    return km, km / hours


def _in_window(state: CustomerState, now: float, window_s: float) -> list[Recent]:
    return [r for r in state.recent if now - window_s < r.ts <= now]


def velocity(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> RuleHit | None:
    window = _in_window(state, txn.event_ts, cfg.velocity_window_s)
    if len(window) + 1 >= cfg.velocity_count:
        return RuleHit(VELOCITY, f"{len(window) + 1} txns in {cfg.velocity_window_s:.0f}s",
                       tuple(r.transaction_id for r in window))
    return None


def impossible_travel(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> RuleHit | None:
    km, speed = implied_speed_kmh(state, txn)
    if km >= cfg.travel_min_km and speed > cfg.travel_speed_kmh:
        return RuleHit(IMPOSSIBLE_TRAVEL, f"{km:.0f} km at {speed:.0f} km/h")
    return None


def high_value(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> RuleHit | None:
    if state.count < cfg.high_value_min_history:
        return None
    std = max(state.std, cfg.high_value_min_std_ratio * state.mean)
    limit = state.mean + cfg.high_value_sigmas * std
    if txn.amount > limit:
        return RuleHit(HIGH_VALUE, f"{txn.amount:.2f} > {limit:.2f} (mean {state.mean:.2f}, std {std:.2f})")
    return None


def card_testing(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> RuleHit | None:
    if txn.amount >= cfg.tiny_amount:
        return None
    tiny = [r for r in _in_window(state, txn.event_ts, cfg.card_testing_window_s) if r.amount < cfg.tiny_amount]
    if len(tiny) + 1 >= cfg.card_testing_count:
        return RuleHit(CARD_TESTING, f"{len(tiny) + 1} amounts < {cfg.tiny_amount} in {cfg.card_testing_window_s:.0f}s",
                       tuple(r.transaction_id for r in tiny))
    return None


def unusual_hour_category(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> RuleHit | None:
    start, end = cfg.unusual_hours
    hour = hour_of_day(txn.event_ts)
    if not (start <= hour < end) or state.count < cfg.unusual_min_history:
        return None
    if txn.store_category in state.categories:
        return None
    if txn.amount < cfg.unusual_amount_ratio * max(state.mean, 1.0):
        return None
    return RuleHit(UNUSUAL_HOUR_CATEGORY, f"{hour:02d}h, new category {txn.store_category}, {txn.amount:.2f}")


RULES = (velocity, impossible_travel, high_value, card_testing, unusual_hour_category)


def evaluate(state: CustomerState, txn: Transaction, cfg: RuleConfig) -> list[RuleHit]:
    """Every rule that fires for ``txn`` given the customer's state before it."""
    return [hit for rule in RULES if (hit := rule(state, txn, cfg)) is not None]


def update(
    state: CustomerState,
    txn: Transaction,
    cfg: RuleConfig,
    hits: list[RuleHit],
    model_score: float | None,
    features: tuple[float, ...] = (),
) -> Recent:
    """Add ``txn`` to the state. A flagged transaction does not teach the customer's "usual"
    (amount statistics, categories): fraud must not make the next fraud look normal. Likewise a
    location reached at an impossible speed does not become the customer's last location: the
    customer's next transaction back home would otherwise be an "impossible" jump of its own (the
    generator never puts a legit transaction right after such fraud, real traffic does)."""
    if not hits:
        state.count += 1
        delta = txn.amount - state.mean
        state.mean += delta / state.count
        state.m2 += delta * (txn.amount - state.mean)
        state.categories.add(txn.store_category)
    jumped = any(h.rule == IMPOSSIBLE_TRAVEL for h in hits)
    if not jumped and (state.last_ts is None or txn.event_ts >= state.last_ts):
        state.last_ts, state.last_lat, state.last_lon = txn.event_ts, txn.lat, txn.lon
    entry = Recent(txn.event_ts, txn.amount, txn.transaction_id, txn.event_time, txn.store_id, model_score,
                   features=features)
    state.recent.append(entry)
    while state.recent and state.recent[0].ts <= txn.event_ts - cfg.window_keep_s:
        state.recent.popleft()
    return entry
