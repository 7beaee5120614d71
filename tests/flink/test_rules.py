"""Each rule on crafted sequences: it fires at its boundary and not just below it."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_app import events
from flink_app.detection import keyed
from flink_app.detection import rules as r
from flink_app.events import Transaction
from tests.flink.builders import make_event

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


def test_a_location_reached_impossibly_is_not_the_next_reference(txn):
    """A card used in New York 30 min after Munich is flagged; the customer's next purchase back in
    Munich must not be flagged as a jump from New York (the generator never puts a legit purchase
    right after such fraud; real traffic does)."""
    state = r.CustomerState()
    feed(state, [txn(0, seconds=0, lat=48.137, lon=11.575)])  # Munich
    assert r.IMPOSSIBLE_TRAVEL in fired(state, txn(1, seconds=1800, lat=40.7128, lon=-74.006))  # New York
    feed(state, [txn(1, seconds=1800, lat=40.7128, lon=-74.006)])
    assert r.IMPOSSIBLE_TRAVEL not in fired(state, txn(2, seconds=3600, lat=48.14, lon=11.58))  # Munich again
    # another purchase in New York soon after is still impossible from Munich
    assert r.IMPOSSIBLE_TRAVEL in fired(state, txn(3, seconds=2400, lat=40.7128, lon=-74.006))


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


# ---- flat state (what Flink stores) and the expiry timer: properties over generated streams --------



CITIES = ((48.137, 11.575), (48.857, 2.352), (52.52, 13.405), (40.4168, -3.7038), (48.16, 11.6))
CATEGORIES = ("grocery", "restaurant", "fuel", "jewelry", "electronics")
_VALIDATOR = events.load_validator()

step = st.tuples(
    st.one_of(st.integers(0, 70), st.integers(0, 4000), st.integers(-1800, 0)),  # seconds since previous
    st.one_of(st.floats(0.5, 1.99), st.floats(5, 80), st.floats(400, 5000)).map(lambda a: round(a, 2)),
    st.sampled_from(CATEGORIES),
    st.sampled_from(CITIES),
)
streams = st.lists(step, min_size=1, max_size=40)


def stream_of(steps: list[tuple[int, float, str, tuple[float, float]]]) -> list[Transaction]:
    """Transactions of one customer built through the real parser (events a day of steps long)."""
    out, seconds = [], -86400.0
    for i, (dt, amount, category, (lat, lon)) in enumerate(steps):
        seconds += dt
        hour = 3 * 3600 if i % 7 == 3 else 0  # now and then a night-time event
        raw = json.dumps(make_event(i, seconds=seconds - hour, amount=amount, store_category=category,
                                    lat=lat, lon=lon)).encode()
        parsed = events.parse_event(raw, _VALIDATOR)
        assert isinstance(parsed, Transaction), parsed
        out.append(parsed)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_flat_state_round_trips_through_pickle_at_every_step(steps):
    state = r.CustomerState()
    for t in stream_of(steps):
        hits = r.evaluate(state, t, CFG)
        r.update(state, t, CFG, hits, 0.25 if hits else None, (float(len(hits)),) * 8)
        if hits:
            state.recent[-1].alerted = True
        flat = state.to_flat()
        assert r.CustomerState.from_flat(pickle.loads(pickle.dumps(flat))) == state  # noqa: S301 - our own bytes
        # only plain values: no class of ours inside, so the stored bytes do not depend on our code
        assert b"flink_app" not in pickle.dumps(flat)


@given(st.lists(st.integers(0, 40 * keyed.DAY_MS), min_size=1, max_size=60), st.integers(1, 40))
def test_timer_registered_once_per_day_gives_the_timers_of_one_per_event(offsets, ttl_days):
    """The new rule (register when the expiry moves) leaves Flink with exactly the timers that
    registering on every event did (Flink keeps one timer per key and timestamp)."""
    now = sorted(1_800_000_000_000 + o for o in offsets)
    per_event = {keyed.expiry_timer_ms(n, ttl_days) for n in now}
    registered, current = [], None
    for n in now:
        timer = keyed.timer_to_register(n, current, ttl_days)
        if timer is not None:
            registered.append(timer)
            current = timer
    assert set(registered) == per_event
    assert len(registered) == len(per_event)  # never the same timer twice
    assert len(registered) <= len({n // keyed.DAY_MS for n in now})


def test_expiry_clears_only_customers_idle_for_the_ttl():
    state = r.CustomerState()
    seen = 1_800_000_000_000
    stored = keyed.store(state, seen, keyed.expiry_timer_ms(seen, 30))
    assert keyed.expired(stored, seen + 30 * keyed.DAY_MS, 30)
    assert not keyed.expired(stored, seen + 30 * keyed.DAY_MS - 1, 30)
    assert keyed.expired(None, seen, 30)
    assert keyed.load(stored) == (state, keyed.expiry_timer_ms(seen, 30))
    assert keyed.load(None) == (r.CustomerState(), None)
