"""Each rule on crafted sequences: it fires at its boundary and not just below it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flink_app.detection import rules as r
from flink_app.events import Transaction

Build = Callable[..., Transaction]

CFG = r.RuleConfig()


def feed(state: r.CustomerState, transactions: Iterable[Transaction]) -> None:
    for t in transactions:
        r.update(state, t, CFG, r.evaluate(state, t, CFG), 0.0)


def fired(state: r.CustomerState, t: Transaction) -> set[str]:
    return {h.rule for h in r.evaluate(state, t, CFG)}


def history(txn: Build, n: int = 10, amount: float = 20.0, category: str = "grocery") -> list[Any]:
    """n ordinary transactions an hour apart, starting a day before the test's base time."""
    return [txn(100 + i, seconds=-86400 + i * 3600, amount=amount + (i % 3), store_category=category)
            for i in range(n)]


def test_velocity_fires_on_the_fifth_txn_within_60s(txn):
    state = r.CustomerState()
    feed(state, [txn(i, seconds=i * 14) for i in range(4)])  # 0, 14, 28, 42 s
    fifth = txn(4, seconds=56)
    hits = r.evaluate(state, fifth, CFG)
    velocity = [h for h in hits if h.rule == r.VELOCITY]
    assert velocity and set(velocity[0].burst_ids) == {"t-0", "t-1", "t-2", "t-3"}


def test_velocity_silent_when_the_fifth_is_just_outside_60s(txn):
    state = r.CustomerState()
    feed(state, [txn(i, seconds=i * 15) for i in range(4)])  # 0..45 s
    assert r.VELOCITY not in fired(state, txn(4, seconds=60.0))  # t-0 is exactly 60 s old: outside
    state = r.CustomerState()
    feed(state, [txn(i, seconds=i * 15) for i in range(3)])
    assert r.VELOCITY not in fired(state, txn(3, seconds=50))  # only four


def test_impossible_travel_above_900_kmh(txn):
    state = r.CustomerState()
    feed(state, [txn(0, seconds=0, lat=48.137, lon=11.575)])  # Munich
    # Munich -> Paris is ~685 km: in 30 min that is ~1370 km/h
    assert r.IMPOSSIBLE_TRAVEL in fired(state, txn(1, seconds=1800, lat=48.857, lon=2.352))


def test_travel_at_plane_speed_or_nearby_is_fine(txn):
    state = r.CustomerState()
    feed(state, [txn(0, seconds=0, lat=48.137, lon=11.575)])
    km = r.haversine_km(48.137, 11.575, 48.857, 2.352)
    just_possible = km / 899.0 * 3600  # slightly below 900 km/h
    assert r.IMPOSSIBLE_TRAVEL not in fired(state, txn(1, seconds=just_possible, lat=48.857, lon=2.352))
    # a few km in one second is GPS jitter, not travel
    assert r.IMPOSSIBLE_TRAVEL not in fired(state, txn(2, seconds=1, lat=48.16, lon=11.6))


def test_late_events_are_judged_by_the_time_between_them(txn):
    state = r.CustomerState()
    feed(state, [txn(0, seconds=3 * 86400, lat=48.137, lon=11.575)])  # Munich, day 3
    # a replayed/late event from day 0 in Paris: 3 days apart, not a jump at infinite speed
    assert r.IMPOSSIBLE_TRAVEL not in fired(state, txn(1, seconds=0, lat=48.857, lon=2.352))
    # late by 30 min but 685 km away: still impossible travel
    assert r.IMPOSSIBLE_TRAVEL in fired(state, txn(2, seconds=3 * 86400 - 1800, lat=48.857, lon=2.352))


def test_high_value_above_mean_plus_six_std(txn):
    state = r.CustomerState()
    feed(state, history(txn))
    std = max(state.std, CFG.high_value_min_std_ratio * state.mean)
    limit = state.mean + 6 * std
    assert r.HIGH_VALUE in fired(state, txn(1, amount=round(limit + 0.5, 2)))
    assert r.HIGH_VALUE not in fired(state, txn(2, amount=round(limit - 0.5, 2)))


def test_high_value_needs_history(txn):
    state = r.CustomerState()
    feed(state, history(txn, n=CFG.high_value_min_history - 1))
    assert r.HIGH_VALUE not in fired(state, txn(1, amount=5000.0))


def test_card_testing_five_tiny_amounts(txn):
    state = r.CustomerState()
    feed(state, [txn(i, seconds=i * 100, amount=0.99) for i in range(4)])
    fifth = fired(state, txn(4, seconds=450, amount=1.50))
    assert r.CARD_TESTING in fifth
    assert r.CARD_TESTING not in fired(state, txn(5, seconds=460, amount=2.00))  # 2.00 is not tiny


def test_card_testing_silent_when_spread_out(txn):
    state = r.CustomerState()
    feed(state, [txn(i, seconds=i * 200, amount=0.99) for i in range(4)])  # 0..600 s
    assert r.CARD_TESTING not in fired(state, txn(4, seconds=800, amount=0.99))  # t-0 left the 600 s window


def test_unusual_hour_new_category_large_amount(txn):
    state = r.CustomerState()
    feed(state, history(txn, amount=30.0))
    # base time is 12:00 UTC; -9 h = 03:00
    assert r.UNUSUAL_HOUR_CATEGORY in fired(state, txn(1, seconds=-9 * 3600, store_category="jewelry", amount=400.0))


def test_unusual_hour_boundaries(txn):
    state = r.CustomerState()
    feed(state, history(txn, amount=30.0))
    at_five = txn(1, seconds=-7 * 3600, store_category="jewelry", amount=400.0)  # 05:00 is outside [1, 5)
    known_category = txn(2, seconds=-9 * 3600, store_category="grocery", amount=400.0)
    small = txn(3, seconds=-9 * 3600, store_category="jewelry", amount=20.0)
    for t in (at_five, known_category, small):
        assert r.UNUSUAL_HOUR_CATEGORY not in fired(state, t)


def test_ordinary_customer_triggers_nothing(txn):
    state = r.CustomerState()
    feed(state, history(txn))
    assert fired(state, txn(1, seconds=3600, amount=22.0)) == set()
