"""The synthetic world: customers with a home and a spending profile, stores with a place and a category.

Everything is drawn once from the seed and held as numpy arrays, so per-event generation is a matter of
fancy indexing. The numeric bounds here are what make the legit-traffic guarantees in
:mod:`generator.pattern_rules` hold (e.g. a customer only shops within ``CITY_RADIUS_KM`` of its city
centre, amounts are capped at the profile's p99), so change them together with those rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

# The single list of store categories (the JSON Schema enum is checked against it in the tests).
CATEGORIES: tuple[str, ...] = (
    "grocery", "restaurant", "fuel", "electronics", "fashion",
    "travel", "pharmacy", "entertainment", "jewelry", "online_services",
)
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}
CHANNELS: tuple[str, ...] = ("pos", "online", "atm")
POS, ONLINE, ATM = 0, 1, 2

# Home cities (all in the euro area, UTC+1): customers live and shop here.
HOME_CITIES: tuple[tuple[str, float, float], ...] = (
    ("Paris", 48.8566, 2.3522), ("Berlin", 52.5200, 13.4050), ("Madrid", 40.4168, -3.7038),
    ("Rome", 41.9028, 12.4964), ("Amsterdam", 52.3676, 4.9041), ("Vienna", 48.2082, 16.3738),
    ("Brussels", 50.8503, 4.3517), ("Milan", 45.4642, 9.1900),
)
# Far-away cities for foreign stores (>= 4,000 km from every home city): only fraud happens there.
FAR_CITIES: tuple[tuple[str, float, float], ...] = (
    ("New York", 40.7128, -74.0060), ("Dubai", 25.2048, 55.2708), ("Singapore", 1.3521, 103.8198),
    ("Sao Paulo", -23.5505, -46.6333), ("Tokyo", 35.6762, 139.6503), ("Johannesburg", -26.2041, 28.0473),
    ("Toronto", 43.6532, -79.3832), ("Mumbai", 19.0760, 72.8777),
)
CITY_RADIUS_KM = 8.0  # homes and domestic stores lie within this radius of their city centre

# Spending profile bounds: per-customer lognormal(mu, sigma) amounts.
MEDIAN_AMOUNT_RANGE = (15.0, 80.0)
SIGMA_RANGE = (0.35, 0.75)
Z_P99 = 2.326347874  # standard normal 99th percentile
LEGIT_MIN_AMOUNT = 2.0  # legit amounts are in [LEGIT_MIN_AMOUNT, p99]
PREFERRED_CATEGORIES_RANGE = (3, 5)  # inclusive

# Activity: hours are UTC. Legit transactions only happen inside a customer's active window.
ACTIVE_START_HOURS = (6.0, 9.0)
ACTIVE_END_HOURS = (20.0, 23.0)


def haversine_km(lat1: F8 | float, lon1: F8 | float, lat2: F8 | float, lon2: F8 | float) -> F8:
    """Great-circle distance in km (same Earth radius as the Flink rules)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a))), dtype=np.float64)


def _jitter(rng: np.random.Generator, lat: F8, lon: F8, radius_km: float) -> tuple[F8, F8]:
    """Uniform points in a disc of ``radius_km`` (slightly inside, so rounding never crosses it)."""
    n = lat.shape[0]
    r = radius_km * 0.98 * np.sqrt(rng.random(n))
    theta = 2 * math.pi * rng.random(n)
    dlat = r * np.cos(theta) / 111.32
    dlon = r * np.sin(theta) / (111.32 * np.cos(np.radians(lat)))
    return np.round(lat + dlat, 5), np.round(lon + dlon, 5)


@dataclass(frozen=True)
class World:
    """Customers and stores. Index ``i`` is customer ``C{i+1:06d}`` / store ``S{i+1:04d}``."""

    # customers
    city: I8
    home_lat: F8
    home_lon: F8
    mu: F8
    sigma: F8
    mean_amount: F8
    p99_amount: F8
    preferred: I8  # (customers, max preferred) category indices, -1 padded
    n_preferred: I8
    active_start_s: F8  # seconds after UTC midnight
    active_end_s: F8
    customer_ids: list[str]
    card_ids: list[str]
    customer_keys: list[bytes]
    # stores
    store_category: I8
    store_lat: F8
    store_lon: F8
    store_city: I8  # home city index, or -1 for a foreign store
    store_ids: list[str]
    # lookup tables: stores by (home city, category) and by category, as CSR (offsets into an index array)
    city_cat_offsets: I8  # shape (cities, categories + 1)
    city_cat_stores: I8
    cat_offsets: I8  # shape (categories + 1,)
    cat_stores: I8
    foreign_stores: I8

    @property
    def n_customers(self) -> int:
        return int(self.city.shape[0])

    @property
    def n_stores(self) -> int:
        return int(self.store_category.shape[0])

    def uses_category(self, customer: int, category: int) -> bool:
        return bool(np.any(self.preferred[customer, : self.n_preferred[customer]] == category))

    def pick_city_store(self, rng: np.random.Generator, customers: I8, categories: I8) -> I8:
        """A random domestic store of ``categories[i]`` in the home city of ``customers[i]``."""
        rows = self.city[customers]
        start = self.city_cat_offsets[rows, categories]
        count = self.city_cat_offsets[rows, categories + 1] - start
        if np.any(count <= 0):
            raise AssertionError("a preferred category has no store in the customer's city")
        return np.asarray(self.city_cat_stores[start + (rng.random(customers.shape[0]) * count).astype(np.int64)])

    def pick_category_store(self, rng: np.random.Generator, categories: I8) -> I8:
        """A random store (any city, domestic or foreign) of ``categories[i]``: online purchases."""
        start = self.cat_offsets[categories]
        count = self.cat_offsets[categories + 1] - start
        return np.asarray(self.cat_stores[start + (rng.random(categories.shape[0]) * count).astype(np.int64)])


def _csr(keys: I8, n_keys: int) -> tuple[I8, I8]:
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=n_keys)
    offsets = np.zeros(n_keys + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts)
    return offsets, order


def build_world(rng: np.random.Generator, customers: int, stores: int) -> World:
    """Draw the world. Needs ``stores >= len(CATEGORIES)`` so every category has at least one store."""
    n_cat = len(CATEGORIES)
    if stores < n_cat:
        raise ValueError(f"need at least {n_cat} stores, got {stores}")
    n_foreign = max(1, stores // 10)
    n_domestic = stores - n_foreign
    n_cities = min(len(HOME_CITIES), n_domestic)

    # Stores: the first 10 cover every category; domestic stores round-robin over the home cities.
    store_category = np.concatenate([np.arange(n_cat), rng.integers(0, n_cat, stores - n_cat)]).astype(np.int64)
    store_city = np.full(stores, -1, dtype=np.int64)
    store_city[:n_domestic] = np.arange(n_domestic) % n_cities
    centre_lat = np.empty(stores)
    centre_lon = np.empty(stores)
    home = np.array([(c[1], c[2]) for c in HOME_CITIES[:n_cities]])
    far = np.array([(c[1], c[2]) for c in FAR_CITIES])
    centre_lat[:n_domestic] = home[store_city[:n_domestic], 0]
    centre_lon[:n_domestic] = home[store_city[:n_domestic], 1]
    far_index = np.arange(n_foreign) % len(FAR_CITIES)
    centre_lat[n_domestic:] = far[far_index, 0]
    centre_lon[n_domestic:] = far[far_index, 1]
    store_lat, store_lon = _jitter(rng, centre_lat, centre_lon, CITY_RADIUS_KM)

    city_cat_key = store_city[:n_domestic] * n_cat + store_category[:n_domestic]
    cc_offsets, cc_order = _csr(city_cat_key, n_cities * n_cat)
    city_cat_offsets = np.zeros((n_cities, n_cat + 1), dtype=np.int64)
    flat = cc_offsets[:-1].reshape(n_cities, n_cat)
    city_cat_offsets[:, :n_cat] = flat
    city_cat_offsets[:, n_cat] = np.append(flat[1:, 0], cc_offsets[-1])
    cat_offsets, cat_stores = _csr(store_category, n_cat)

    # Customers.
    city = rng.integers(0, n_cities, customers).astype(np.int64)
    home_lat, home_lon = _jitter(rng, home[city, 0], home[city, 1], CITY_RADIUS_KM)
    mu = np.log(rng.uniform(*MEDIAN_AMOUNT_RANGE, customers))
    sigma = rng.uniform(*SIGMA_RANGE, customers)
    mean_amount = np.exp(mu + sigma**2 / 2)
    p99_amount = np.exp(mu + Z_P99 * sigma)
    max_pref = PREFERRED_CATEGORIES_RANGE[1]
    preferred = np.full((customers, max_pref), -1, dtype=np.int64)
    n_preferred = np.zeros(customers, dtype=np.int64)
    available = [np.flatnonzero(np.diff(city_cat_offsets[c]) > 0) for c in range(n_cities)]
    wanted = rng.integers(PREFERRED_CATEGORIES_RANGE[0], max_pref + 1, customers)
    keys = rng.random((customers, n_cat))
    for c in range(n_cities):  # vectorised per city: a random subset of the city's categories
        members = np.flatnonzero(city == c)
        cats = available[c]
        width = min(max_pref, cats.shape[0])
        chosen = cats[np.argsort(keys[members, : cats.shape[0]], axis=1)[:, :width]]
        k = np.minimum(wanted[members], cats.shape[0])
        preferred[members, :width] = np.where(np.arange(width) < k[:, None], chosen, -1)
        n_preferred[members] = k
    active_start_s = rng.uniform(*ACTIVE_START_HOURS, customers) * 3600.0
    active_end_s = rng.uniform(*ACTIVE_END_HOURS, customers) * 3600.0

    customer_ids = [f"C{i + 1:06d}" for i in range(customers)]
    return World(
        city=city, home_lat=home_lat, home_lon=home_lon, mu=mu, sigma=sigma, mean_amount=mean_amount,
        p99_amount=p99_amount, preferred=preferred, n_preferred=n_preferred,
        active_start_s=active_start_s, active_end_s=active_end_s,
        customer_ids=customer_ids, card_ids=[f"K{i + 1:06d}" for i in range(customers)],
        customer_keys=[c.encode() for c in customer_ids],
        store_category=store_category, store_lat=store_lat, store_lon=store_lon, store_city=store_city,
        store_ids=[f"S{i + 1:04d}" for i in range(stores)],
        city_cat_offsets=city_cat_offsets, city_cat_stores=cc_order,
        cat_offsets=cat_offsets, cat_stores=cat_stores,
        foreign_stores=np.arange(n_domestic, stores, dtype=np.int64),
    )
