"""A second detection-quality stream, made without the generator and without its guarantees (issue 13).

The generator promises things that make detection easy: legit transactions of a customer are
>= 10 min and <= 16 km apart, legit amounts lie in [2.00, p99], legit hours are 06-23 UTC, legit
categories are the customer's preferred ones (``generator/pattern_rules.py``). A detector tuned on
that stream can lean on those promises. This module builds a stream with its own code, seed, world
(22 cities on five continents), customers, time span and amounts, and with legit behaviour that
breaks each promise:

- ``traveller``: flights of 800-17,000 km; the purchase at the departure airport and the one after
  landing are at most (flight time at 700-880 km/h) + 25-60 min apart, then days of shopping abroad;
- ``split_payment``: one bill paid as 2-4 payments at the same store, seconds apart;
- ``night_usual``: purchases at 01:00-04:59 UTC in the customer's usual categories;
- ``large_legit``: now and then 3-12 x the customer's typical amount, sometimes in a new category;
- ``small_legit``: amounts of 0.50-1.99 (parking, vending), a few per hour at most.

Fraud is injected with parameters of its own (not the generator's): ``velocity_burst`` 5-8
payments in 15-55 s; ``impossible_travel`` 2,000-15,000 km within 10-120 min; ``high_value``
8-30 x the typical amount; ``card_testing`` 5-9 amounts under 2.00 within 1-8 min;
``unusual_hour_category`` 01-04 UTC, a category never used, 4-10 x the typical amount.

Each line of :func:`write` is ``{"label": ..., "event": "<the raw event JSON>"}``: the label
(a fraud pattern, or ``legit:<scenario>``) travels next to the event, never inside it, and the
event is schema-valid (``is_fraud_truth``/``fraud_pattern`` agree with the label, but the detector
does not read them).

    python -m bench.independent_stream --seed 9001 --out /tmp/stream.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEED = 9001
CUSTOMERS = 600
DAYS = 21
START = datetime(2025, 6, 2, tzinfo=UTC)
FRAUD_EPISODES_PER_CUSTOMER = 0.5

CITIES: tuple[tuple[str, float, float, str], ...] = (
    ("New York", 40.7128, -74.0060, "USD"), ("Chicago", 41.8781, -87.6298, "USD"),
    ("Los Angeles", 34.0522, -118.2437, "USD"), ("Toronto", 43.6532, -79.3832, "CAD"),
    ("Mexico City", 19.4326, -99.1332, "MXN"), ("Sao Paulo", -23.5505, -46.6333, "BRL"),
    ("Buenos Aires", -34.6037, -58.3816, "ARS"), ("London", 51.5074, -0.1278, "GBP"),
    ("Dublin", 53.3498, -6.2603, "EUR"), ("Lisbon", 38.7223, -9.1393, "EUR"),
    ("Warsaw", 52.2297, 21.0122, "PLN"), ("Istanbul", 41.0082, 28.9784, "TRY"),
    ("Cairo", 30.0444, 31.2357, "EGP"), ("Nairobi", -1.2921, 36.8219, "KES"),
    ("Johannesburg", -26.2041, 28.0473, "ZAR"), ("Dubai", 25.2048, 55.2708, "AED"),
    ("Mumbai", 19.0760, 72.8777, "INR"), ("Singapore", 1.3521, 103.8198, "SGD"),
    ("Tokyo", 35.6762, 139.6503, "JPY"), ("Seoul", 37.5665, 126.9780, "KRW"),
    ("Sydney", -33.8688, 151.2093, "AUD"), ("Auckland", -36.8485, 174.7633, "NZD"),
)
CATEGORIES = ("grocery", "restaurant", "fuel", "electronics", "fashion", "travel", "pharmacy", "entertainment",
              "jewelry", "online_services")
LEGIT_SCENARIOS = ("ordinary", "traveller", "split_payment", "night_usual", "large_legit", "small_legit")
FRAUD_PATTERNS = ("velocity_burst", "impossible_travel", "high_value", "card_testing", "unusual_hour_category")


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


@dataclass
class Customer:
    index: int
    home: int  # city index
    typical: float  # median amount
    spread: float  # lognormal sigma
    usual: tuple[str, ...]
    per_day: float
    away: dict[int, int] = field(default_factory=dict)  # day -> city while abroad
    travel_days: set[int] = field(default_factory=set)  # flight days: only the airport purchases
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # (ts, label, fields)

    @property
    def customer_id(self) -> str:
        return f"X{self.index:05d}"


class Builder:
    def __init__(self, seed: int = SEED, customers: int = CUSTOMERS, days: int = DAYS) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.start = START.timestamp()
        self.days = days
        self.customers = [self._customer(i) for i in range(customers)]

    def _customer(self, i: int) -> Customer:
        rng = self.rng
        usual = tuple(rng.sample(CATEGORIES[:8], rng.randint(3, 5)))  # jewelry/online never "usual" at start
        return Customer(i, rng.randrange(len(CITIES)), math.exp(rng.uniform(math.log(8), math.log(160))),
                        rng.uniform(0.25, 0.8), usual, rng.uniform(0.8, 4.0))

    # ---- helpers ----------------------------------------------------------------------------------
    def _amount(self, c: Customer, factor: float = 1.0, low: float = 2.0) -> float:
        return round(max(low, c.typical * factor * math.exp(self.rng.gauss(0, c.spread))), 2)

    def _near(self, city: int, radius_km: float = 12.0) -> tuple[float, float]:
        _name, lat, lon, _cur = CITIES[city]
        r = radius_km * math.sqrt(self.rng.random())
        a = self.rng.uniform(0, 2 * math.pi)
        return (round(lat + r * math.cos(a) / 111.0, 5),
                round(lon + r * math.sin(a) / (111.0 * max(0.2, math.cos(math.radians(lat)))), 5))

    def _add(self, c: Customer, ts: float, label: str, city: int, category: str, amount: float,
             store: int | None = None, channel: str = "pos") -> None:
        lat, lon = self._near(city)
        store = self.rng.randrange(40) if store is None else store
        store_id = f"XS{city:02d}{CATEGORIES.index(category)}{store:02d}"
        c.events.append((ts, label, {"store_id": store_id, "store_category": category, "amount": amount,
                                     "lat": lat, "lon": lon, "channel": channel, "currency": CITIES[city][3]}))

    def _day_time(self, day: int, first_hour: float = 7.0, last_hour: float = 23.0) -> float:
        return self.start + day * 86400 + self.rng.uniform(first_hour, last_hour) * 3600

    def _free_day(self, c: Customer, first: int = 0) -> int:
        """A day without a flight (where the customer is is known all day)."""
        return self.rng.choice([d for d in range(first, self.days) if d not in c.travel_days])

    @staticmethod
    def _city(c: Customer, day: int) -> int:
        return c.away.get(day, c.home)

    # ---- behaviour ---------------------------------------------------------------------------------
    def ordinary(self, c: Customer) -> None:
        for day in range(self.days):
            if day in c.travel_days:
                continue
            for _ in range(min(8, int(self.rng.expovariate(1 / c.per_day)) + (1 if self.rng.random() < 0.5 else 0))):
                self._add(c, self._day_time(day), "legit:ordinary", self._city(c, day),
                          self.rng.choice(c.usual), self._amount(c))

    def traveller(self, c: Customer) -> None:
        """Trips abroad (``c.away``: day -> city); flight days hold only the two airport purchases."""
        day = self.rng.randint(1, 6)
        for _trip in range(self.rng.randint(1, 2)):
            if day + 3 >= self.days:
                break
            destinations = [i for i in range(len(CITIES))
                            if 800 <= km_between(*CITIES[c.home][1:3], *CITIES[i][1:3]) <= 17_000]
            dest = self.rng.choice(destinations)
            stay = self.rng.randint(2, 6)
            for leg, (origin, target, on_day) in enumerate(((c.home, dest, day), (dest, c.home, day + stay))):
                if on_day >= self.days:
                    break
                km = km_between(*CITIES[origin][1:3], *CITIES[target][1:3])
                depart = self._day_time(on_day, 6.0, 14.0)
                flight_h = km / self.rng.uniform(700.0, 880.0)
                arrive = depart + flight_h * 3600 + self.rng.uniform(25, 60) * 60  # boarding + after landing
                self._add(c, depart, "legit:traveller", origin, self.rng.choice(c.usual), self._amount(c))
                self._add(c, arrive, "legit:traveller", target, self.rng.choice(c.usual), self._amount(c))
                c.travel_days.update(range(on_day, int((arrive - self.start) // 86400) + 1))
                if leg == 0:
                    for d in range(on_day, min(self.days, on_day + stay)):
                        c.away[d] = dest
            day += stay + self.rng.randint(3, 8)

    def split_payment(self, c: Customer) -> None:
        for _ in range(self.rng.randint(1, 3)):
            day = self._free_day(c)
            t = self._day_time(day, 11.0, 22.0)
            store = self.rng.randrange(40)
            category = self.rng.choice(c.usual)
            bill = self._amount(c, 2.5)
            parts = self.rng.randint(2, 4)
            for _k in range(parts):
                self._add(c, t, "legit:split_payment", self._city(c, day), category, round(max(2.0, bill / parts), 2),
                          store)
                t += self.rng.uniform(3, 15)

    def night_usual(self, c: Customer) -> None:
        for _ in range(self.rng.randint(2, 6)):
            day = self._free_day(c)
            t = self.start + day * 86400 + self.rng.uniform(1.0, 4.99) * 3600
            self._add(c, t, "legit:night_usual", self._city(c, day), self.rng.choice(c.usual),
                      self._amount(c, self.rng.choice((1.0, 1.0, 2.0, 3.0))))

    def large_legit(self, c: Customer) -> None:
        for _ in range(self.rng.randint(1, 2)):
            new = self.rng.random() >= 0.6
            category = self.rng.choice(("electronics", "travel")) if new else self.rng.choice(c.usual)
            day = self._free_day(c, 5)
            t = self._day_time(day, 9.0, 21.0)
            self._add(c, t, "legit:large_legit", self._city(c, day), category,
                      round(c.typical * self.rng.uniform(3.0, 12.0), 2))

    def small_legit(self, c: Customer) -> None:
        for _ in range(self.rng.randint(1, 4)):
            day = self._free_day(c)
            t = self._day_time(day, 7.0, 20.0)
            for _k in range(self.rng.randint(1, 4)):
                self._add(c, t, "legit:small_legit", self._city(c, day),
                          self.rng.choice(("fuel", "grocery", "entertainment")),
                          round(self.rng.uniform(0.5, 1.99), 2))
                t += self.rng.uniform(15, 90) * 60

    def fraud(self, c: Customer) -> None:
        pattern = self.rng.choice(FRAUD_PATTERNS)
        day = self._free_day(c, 4)
        here = self._city(c, day)
        t = self._day_time(day, 8.0, 22.0)
        if pattern == "velocity_burst":
            n = self.rng.randint(5, 8)
            span = self.rng.uniform(15, 55)
            for k in range(n):
                self._add(c, t + span * k / (n - 1), pattern, here, self.rng.choice(CATEGORIES),
                          self._amount(c, self.rng.uniform(0.5, 2.0)), channel="online")
        elif pattern == "impossible_travel":
            far = [i for i in range(len(CITIES)) if 2000 <= km_between(*CITIES[here][1:3], *CITIES[i][1:3]) <= 15000]
            self._add(c, t, "legit:ordinary", here, self.rng.choice(c.usual), self._amount(c))
            self._add(c, t + self.rng.uniform(10, 120) * 60, pattern, self.rng.choice(far),
                      self.rng.choice(CATEGORIES), self._amount(c, self.rng.uniform(1.0, 4.0)))
        elif pattern == "high_value":
            self._add(c, t, pattern, here, self.rng.choice(CATEGORIES),
                      round(c.typical * self.rng.uniform(8.0, 30.0), 2), channel="online")
        elif pattern == "card_testing":
            n = self.rng.randint(5, 9)
            span = self.rng.uniform(60, 480)
            for k in range(n):
                self._add(c, t + span * k / (n - 1), pattern, here, "online_services",
                          round(self.rng.uniform(0.05, 1.99), 2), channel="online")
        else:
            night = self.start + day * 86400 + self.rng.uniform(1.0, 4.9) * 3600
            unused = [x for x in CATEGORIES if x not in c.usual]
            self._add(c, night, pattern, here, self.rng.choice(unused),
                      round(c.typical * self.rng.uniform(4.0, 10.0), 2))

    def build(self) -> list[tuple[str, bytes]]:
        """(label, raw event bytes) in event-time order."""
        for c in self.customers:
            rng = self.rng
            if rng.random() < 0.3:
                self.traveller(c)
            self.ordinary(c)
            if rng.random() < 0.25:
                self.split_payment(c)
            if rng.random() < 0.25:
                self.night_usual(c)
            if rng.random() < 0.2:
                self.large_legit(c)
            if rng.random() < 0.3:
                self.small_legit(c)
            episodes = int(FRAUD_EPISODES_PER_CUSTOMER) + (rng.random() < FRAUD_EPISODES_PER_CUSTOMER % 1)
            for _ in range(episodes):
                self.fraud(c)
        rows = [(ts, c, label, fields) for c in self.customers for ts, label, fields in c.events]
        rows.sort(key=lambda r: (r[0], r[1].index))
        out = []
        for n, (ts, c, label, fields) in enumerate(rows):
            fraud = not label.startswith("legit:")
            when = datetime.fromtimestamp(ts, UTC)
            event = {"schema_version": 1, "transaction_id": f"x-{self.seed}-{n}", "customer_id": c.customer_id,
                     "card_id": f"KX{c.index:05d}", "store_id": fields["store_id"],
                     "store_category": fields["store_category"], "amount": fields["amount"],
                     "currency": fields["currency"], "channel": fields["channel"],
                     "event_time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
                     "lat": fields["lat"], "lon": fields["lon"], "is_fraud_truth": fraud,
                     "fraud_pattern": label if fraud else None}
            out.append((label, json.dumps(event, separators=(",", ":")).encode()))
        return out


def write(path: Path, seed: int = SEED) -> int:
    rows = Builder(seed).build()
    with path.open("w") as out:
        for label, raw in rows:
            out.write(json.dumps({"label": label, "event": raw.decode()}) + "\n")
    return len(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    print(write(options.out, options.seed))
