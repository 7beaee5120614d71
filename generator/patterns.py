"""Fraud injection: episodes that satisfy :mod:`generator.pattern_rules`, placed so nothing else does.

An episode belongs to one customer and hangs off an *anchor*: one of that customer's legit
transactions. The episode starts after the anchor and the customer's legit transactions between the
anchor and the episode's *guard end* are removed, and no other episode of the customer may start
before the guard end (``blocked_until``). That is how the neighbours of an episode stay innocent:

* velocity_burst: 5–8 POS transactions at one store of the home city, 2–12 s apart, 15–60 min after
  the anchor; guard 15 min after the last one.
* impossible_travel: one POS transaction at a foreign store (>= 4,000 km away) 10–60 min after the
  anchor (so >= 4,000 km/h); guard ``distance / 600 km/h + 10 min``, so the next transaction's
  implied speed is <= 600 km/h.
* high_value: one online transaction of 8–20 x p99 in electronics/travel/jewelry, 15–60 min after the
  anchor.
* card_testing: 5–8 online transactions of 0.10–1.99 at one online_services store, 20–60 s apart (so
  never 5 within 60 s), 15–60 min after the anchor.
* unusual_hour_category: one online transaction at 01:00–05:00 UTC the night after the anchor, in a
  category the customer never uses (jewelry or electronics when possible), amount 4.5–7 x the
  profile mean (below the high_value bound of 5 x p99 >= 10 x mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.model import B1, CATEGORY_INDEX, F8, I8, ONLINE, POS, World, haversine_km
from generator.pattern_rules import FRAUD_PATTERNS

# Average events per episode with patterns drawn uniformly (bursts 5–8 events, others 1).
AVERAGE_EPISODE_EVENTS = (6.5 + 1 + 1 + 6.5 + 1) / len(FRAUD_PATTERNS)
GUARD_S = 900.0
TRAVEL_GUARD_SPEED_KMH = 600.0
_HIGH_VALUE_CATEGORIES = np.array([CATEGORY_INDEX[c] for c in ("electronics", "travel", "jewelry")])
_UNUSUAL_PREFERRED = (CATEGORY_INDEX["jewelry"], CATEGORY_INDEX["electronics"])
_ONLINE_SERVICES = CATEGORY_INDEX["online_services"]


@dataclass
class Injection:
    """Fraud events (unsorted) plus which legit events to drop and which are anchors."""

    time: F8
    customer: I8
    store: I8
    amount: F8
    channel: I8
    lat: F8
    lon: F8
    pattern: I8  # 1-based index into FRAUD_PATTERNS
    episode: I8
    drop_legit: B1
    anchors: I8



def _cents(values: F8) -> F8:
    return np.asarray(np.floor(np.asarray(values) * 100.0 + 1e-9) / 100.0)


def legit_amounts(world: World, rng: np.random.Generator, customers: I8) -> F8:
    """Profile amounts clipped to [2.00, p99] and floored to cents (so always <= p99)."""
    raw = rng.lognormal(world.mu[customers], world.sigma[customers])
    return _cents(np.clip(raw, 2.0, world.p99_amount[customers]))


def inject(world: World, rng: np.random.Generator, legit_time: F8, legit_customer: I8, legit_lat: F8,
           legit_lon: F8, n_episodes: int, blocked_until: F8, first_episode: int) -> Injection:
    """Draw up to ``n_episodes`` episodes (at most one per customer) anchored on the given legit events.

    ``blocked_until`` is updated in place with each episode's guard end.
    """
    n_legit = legit_time.shape[0]
    perm = rng.permutation(n_legit)
    _, first = np.unique(legit_customer[perm], return_index=True)
    anchors: I8 = np.asarray(perm[np.sort(first)][:n_episodes], dtype=np.int64)
    kinds: I8 = np.asarray(rng.integers(0, len(FRAUD_PATTERNS), anchors.shape[0]), dtype=np.int64)

    cols: dict[str, list[float]] = {k: [] for k in ("time", "customer", "store", "amount", "channel", "lat", "lon",
                                                      "pattern", "episode")}
    lo = np.full(world.n_customers, np.inf)
    hi = np.full(world.n_customers, -np.inf)

    def add(times: F8, c: int, store: int, amounts: F8, channel: int, lat: float, lon: float, kind: int,
            episode: int) -> None:
        n = times.shape[0]
        cols["time"].extend(times.tolist())
        cols["customer"].extend([c] * n)
        cols["store"].extend([store] * n)
        cols["amount"].extend(amounts.tolist())
        cols["channel"].extend([channel] * n)
        cols["lat"].extend([lat] * n)
        cols["lon"].extend([lon] * n)
        cols["pattern"].extend([kind + 1] * n)
        cols["episode"].extend([episode] * n)

    anchor_list = [int(a) for a in anchors]
    kind_list = [int(k) for k in kinds]
    for number, (anchor, kind) in enumerate(zip(anchor_list, kind_list, strict=True)):
        c = int(legit_customer[anchor])
        t_anchor = float(legit_time[anchor])
        episode = first_episode + number
        name = FRAUD_PATTERNS[kind]
        one = np.array([c])
        if name == "velocity_burst":
            n = int(rng.integers(5, 9))
            times = t_anchor + rng.uniform(900, 3600) + np.concatenate([[0.0], np.cumsum(rng.uniform(2, 12, n - 1))])
            category = world.preferred[c, int(rng.integers(0, world.n_preferred[c]))]
            store = int(world.pick_city_store(rng, one, np.array([category]))[0])
            amounts = legit_amounts(world, rng, np.full(n, c))
            add(times, c, store, amounts, POS, float(world.store_lat[store]), float(world.store_lon[store]), kind,
                episode)
            guard_end = float(times[-1]) + GUARD_S
        elif name == "impossible_travel":
            t = t_anchor + rng.uniform(600, 3600)
            store = int(world.foreign_stores[int(rng.integers(0, world.foreign_stores.shape[0]))])
            lat, lon = float(world.store_lat[store]), float(world.store_lon[store])
            km = float(haversine_km(float(legit_lat[anchor]), float(legit_lon[anchor]), lat, lon))
            add(np.array([t]), c, store, legit_amounts(world, rng, one), POS, lat, lon, kind, episode)
            guard_end = t + km / TRAVEL_GUARD_SPEED_KMH * 3600.0 + 600.0
        elif name == "high_value":
            t = t_anchor + rng.uniform(900, 3600)
            category = _HIGH_VALUE_CATEGORIES[int(rng.integers(0, _HIGH_VALUE_CATEGORIES.shape[0]))]
            store = int(world.pick_category_store(rng, np.array([category]))[0])
            amount = _cents(np.array([rng.uniform(8, 20) * world.p99_amount[c]]))
            add(np.array([t]), c, store, amount, ONLINE, float(world.home_lat[c]), float(world.home_lon[c]), kind,
                episode)
            guard_end = t + GUARD_S
        elif name == "card_testing":
            n = int(rng.integers(5, 9))
            times = t_anchor + rng.uniform(900, 3600) + np.concatenate([[0.0], np.cumsum(rng.uniform(20, 60, n - 1))])
            store = int(world.pick_category_store(rng, np.array([_ONLINE_SERVICES]))[0])
            amounts = _cents(rng.uniform(0.10, 1.999, n))
            add(times, c, store, amounts, ONLINE, float(world.home_lat[c]), float(world.home_lon[c]), kind, episode)
            guard_end = float(times[-1]) + GUARD_S
        else:  # unusual_hour_category
            day = np.floor(t_anchor / 86400.0)
            t = float((day + 1) * 86400.0 + 3600.0 + rng.uniform(0, 4 * 3600.0 - 60.0))
            unused = [k for k in _UNUSUAL_PREFERRED if not world.uses_category(c, k)]
            if not unused:
                unused = [k for k in range(len(CATEGORY_INDEX)) if not world.uses_category(c, k)]
            category = unused[int(rng.integers(0, len(unused)))]
            store = int(world.pick_category_store(rng, np.array([category]))[0])
            amount = _cents(np.array([rng.uniform(4.5, 7) * world.mean_amount[c]]))
            add(np.array([t]), c, store, amount, ONLINE, float(world.home_lat[c]), float(world.home_lon[c]), kind,
                episode)
            guard_end = t + GUARD_S
        lo[c] = t_anchor
        hi[c] = guard_end
        blocked_until[c] = max(float(blocked_until[c]), guard_end)

    drop = (legit_time > lo[legit_customer]) & (legit_time <= hi[legit_customer])
    return Injection(
        time=np.asarray(cols["time"], dtype=np.float64),
        customer=np.asarray(cols["customer"], dtype=np.int64),
        store=np.asarray(cols["store"], dtype=np.int64),
        amount=np.asarray(cols["amount"], dtype=np.float64),
        channel=np.asarray(cols["channel"], dtype=np.int64),
        lat=np.asarray(cols["lat"], dtype=np.float64),
        lon=np.asarray(cols["lon"], dtype=np.float64),
        pattern=np.asarray(cols["pattern"], dtype=np.int64),
        episode=np.asarray(cols["episode"], dtype=np.int64),
        drop_legit=drop,
        anchors=anchors.astype(np.int64),
    )
