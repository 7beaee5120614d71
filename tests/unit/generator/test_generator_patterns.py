"""Each injected fraud pattern matches its definition (generator.pattern_rules), legit traffic never does.

The reference checkers run over *all* valid events of a customer, as a detector would see them, and
must flag exactly the events labelled with that pattern: no more (precision), no fewer (recall).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from generator_samples import Sample, generate

from generator import pattern_rules as rules
from generator.model import CATEGORIES, ONLINE, haversine_km


def _labelled(events: list[dict[str, Any]]) -> dict[str | None, set[str]]:
    out: dict[str | None, set[str]] = defaultdict(set)
    for e in events:
        out[e["fraud_pattern"]].add(e["transaction_id"])
    return out


def _detected(sample: Sample) -> dict[str, set[str]]:
    world = sample.world
    found: dict[str, set[str]] = {p: set() for p in rules.FRAUD_PATTERNS}
    for customer_id, txns in rules.by_customer(sample.valid_events).items():
        c = int(customer_id[1:]) - 1
        used = {CATEGORIES[k] for k in world.preferred[c, : world.n_preferred[c]].tolist()}
        found[rules.VELOCITY_BURST] |= rules.velocity_burst_ids(txns)
        found[rules.CARD_TESTING] |= rules.card_testing_ids(txns)
        found[rules.IMPOSSIBLE_TRAVEL] |= rules.impossible_travel_ids(txns)
        found[rules.HIGH_VALUE] |= rules.high_value_ids(txns, float(world.p99_amount[c]))
        found[rules.UNUSUAL_HOUR_CATEGORY] |= rules.unusual_hour_category_ids(txns, used, float(world.mean_amount[c]))
    return found


@pytest.fixture(scope="module")
def fraud_labels(fraud_sample: Sample) -> dict[str | None, set[str]]:
    return _labelled(fraud_sample.valid_events)


@pytest.fixture(scope="module")
def fraud_detections(fraud_sample: Sample) -> dict[str, set[str]]:
    return _detected(fraud_sample)


@pytest.mark.parametrize("pattern", rules.FRAUD_PATTERNS)
def test_labelled_events_match_their_definition_and_nothing_else_does(
        fraud_labels: dict[str | None, set[str]], fraud_detections: dict[str, set[str]], pattern: str) -> None:
    labelled = fraud_labels
    detected = fraud_detections[pattern]
    assert len(labelled[pattern]) >= 100, f"too few {pattern} events to say anything"
    assert detected - labelled[pattern] == set(), f"{pattern}: unlabelled events match the definition"
    assert labelled[pattern] - detected == set(), f"{pattern}: labelled events that do not match the definition"


def test_patterns_still_hold_among_valid_events_when_some_are_malformed(malformed_sample: Sample) -> None:
    labelled = _labelled(malformed_sample.valid_events)
    for pattern, detected in _detected(malformed_sample).items():
        assert detected == labelled[pattern], pattern


def test_patterns_hold_in_a_small_fraud_heavy_world() -> None:
    """Few customers, 30% fraud: episodes are dense per customer, the guards must still keep them apart."""
    sample = generate(30_000, seed=21, customers=40, stores=12, fraud_rate=0.3)
    labelled = _labelled(sample.valid_events)
    assert float(np.mean(sample.batch.pattern > 0)) == pytest.approx(0.3, rel=0.1)
    for pattern, detected in _detected(sample).items():
        assert detected == labelled[pattern], pattern


def test_every_event_of_an_episode_is_labelled_and_bursts_have_at_least_five(fraud_sample: Sample) -> None:
    batch = fraud_sample.batch
    fraud = batch.pattern > 0
    assert np.all((batch.episode >= 0) == fraud)
    sizes = np.bincount(batch.episode[fraud])
    patterns = {int(e): int(p) for e, p in zip(batch.episode[fraud], batch.pattern[fraud], strict=True)}
    for episode, pattern in patterns.items():
        name = rules.FRAUD_PATTERNS[pattern - 1]
        if name in (rules.VELOCITY_BURST, rules.CARD_TESTING):
            assert 5 <= sizes[episode] <= 8, (episode, name)
        else:
            assert sizes[episode] == 1, (episode, name)


@pytest.mark.parametrize(("rate", "customers"), [(0.01, 1000), (0.02, 1000), (0.1, 1000), (0.5, 1000), (0.02, 1)])
def test_fraud_share_is_close_to_the_rate(rate: float, customers: int) -> None:
    sample = generate(60_000, seed=3, fraud_rate=rate, customers=customers, stores=10)
    share = float(np.mean(sample.batch.pattern > 0))
    assert share == pytest.approx(rate, rel=0.1)


def test_zero_fraud_rate_gives_no_fraud() -> None:
    sample = generate(20_000, seed=3, fraud_rate=0.0)
    assert not np.any(sample.batch.pattern)


def test_legit_traffic_guarantees(fraud_sample: Sample) -> None:
    """The bounds behind 'legit never looks like fraud': gaps, amounts, hours, distances, categories."""
    world, batch = fraud_sample.world, fraud_sample.batch
    legit = batch.take(np.flatnonzero(batch.pattern == 0))
    c = legit.customer
    assert np.all(legit.amount >= 2.0) and np.all(legit.amount <= world.p99_amount[c])
    hours = (legit.time % 86400) / 3600
    assert np.all((hours >= 6) & (hours < 23))
    category = world.store_category[legit.store]
    assert np.all(np.any(world.preferred[c] == category[:, None], axis=1)), "legit event outside preferred categories"
    online = legit.channel == ONLINE
    assert np.all(world.store_city[legit.store[~online]] == world.city[c[~online]]), "legit POS/ATM away from home"
    # Consecutive legit transactions of a customer: >= 10 min and <= 20 km apart (so <= 120 km/h).
    order = np.lexsort((legit.time, c))
    same = c[order][1:] == c[order][:-1]
    t, lat, lon = legit.time[order], legit.lat[order], legit.lon[order]
    assert np.all(np.diff(t)[same] >= rules.LEGIT_MIN_GAP_S - 0.001)
    assert np.all(haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:])[same] <= 20.0)
    assert same.sum() > len(legit) * 0.9


def test_far_cities_are_far_from_every_home_city() -> None:
    from generator.model import FAR_CITIES, HOME_CITIES

    for _, hlat, hlon in HOME_CITIES:
        for _, flat, flon in FAR_CITIES:
            assert rules.haversine_km(hlat, hlon, flat, flon) >= 4000


def test_event_time_never_goes_backwards(fraud_sample: Sample) -> None:
    assert np.all(np.diff(fraud_sample.batch.time) >= 0)
