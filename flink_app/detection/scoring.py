"""Model features, a numpy IsolationForest evaluator, score combination and the per-event scorer.

Why a numpy forest: sklearn's ``score_samples`` costs milliseconds per call however small the
input, which caps a per-record Flink function at a few hundred events/s. :class:`FlatForest`
copies the fitted trees into padded arrays and walks all trees at once with a few vectorised
numpy steps per depth level (tens of microseconds per event); a unit test proves it returns
sklearn's own scores. :class:`FraudScorer` is the single code path of the Flink job and of the
offline detection-quality benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from flink_app.detection import rules as r
from flink_app.events import Transaction

FEATURES = (
    "log_amount",
    "amount_zscore",
    "hour_of_day",
    "new_category",
    "log_seconds_since_last",
    "log_speed_kmh",
    "txns_last_60s",
    "tiny_txns_last_10min",
)


def features(state: r.CustomerState, txn: Transaction) -> list[float]:
    """The model's feature vector for ``txn`` given the customer's state before it."""
    last_60 = sum(1 for x in state.recent if txn.event_ts - 60 < x.ts <= txn.event_ts)
    tiny_600 = sum(1 for x in state.recent if txn.event_ts - 600 < x.ts <= txn.event_ts and x.amount < 2.0)
    new_category = state.count >= 3 and txn.store_category not in state.categories
    return feature_vector(state.count, state.mean, state.m2, state.last_ts, state.last_lat, state.last_lon,
                          last_60, tiny_600, new_category, txn.amount, txn.event_ts, txn.lat, txn.lon)


def feature_vector(count: int, mean: float, m2: float, last_ts: float | None, last_lat: float | None,
                   last_lon: float | None, last_60: int, tiny_600: int, new_category: bool, amount: float,
                   event_ts: float, lat: float, lon: float) -> list[float]:
    """The features from what they read of the state (the fraud detector's Java rules send these
    numbers with an alert, flink_app/detection/candidates.py, so the model sees the same vector)."""
    std = max(math.sqrt(m2 / (count - 1)) if count > 1 else 0.0, 0.1 * mean, 1.0)
    zscore = (amount - mean) / std if count >= 3 else 0.0
    since = event_ts - last_ts if last_ts is not None else 7 * 86400.0
    _km, speed = r.implied_speed(last_ts, last_lat, last_lon, event_ts, lat, lon)
    return [
        math.log1p(amount),
        max(-10.0, min(50.0, zscore)),
        float(r.hour_of_day(event_ts)),
        1.0 if new_category else 0.0,
        math.log1p(max(0.0, min(since, 7 * 86400.0))),
        math.log1p(speed),
        float(last_60),
        float(tiny_600),
    ]


def _average_path_length(n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """c(n) of Liu et al., as in sklearn.ensemble._iforest._average_path_length."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    small = n <= 1
    two = n == 2
    big = ~(small | two)
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class FlatForest:
    """A fitted ``IsolationForest`` as padded arrays; ``anomaly`` == ``-model.score_samples``."""

    def __init__(self, model: Any) -> None:
        trees = [e.tree_ for e in model.estimators_]
        n_features = int(model.n_features_in_)
        if int(model._max_features) != n_features:
            # with all features, sklearn fits and applies every tree to the unpermuted columns
            raise ValueError("FlatForest needs max_features=1.0 (every tree sees every feature)")
        width = max(t.node_count for t in trees)
        count = len(trees)
        # One flat array per node attribute; node (tree i, node j) lives at i * width + j. Leaves point
        # to themselves, so a fixed number of steps (the max depth) reaches every leaf.
        self.left = np.arange(count * width, dtype=np.int64)
        self.right = self.left.copy()
        self.feature = np.zeros(count * width, dtype=np.int64)
        self.threshold = np.full(count * width, np.inf, dtype=np.float64)
        self.leaf_value = np.zeros(count * width, dtype=np.float64)
        for i, tree in enumerate(trees):
            n, base = tree.node_count, i * width
            inner = tree.children_left != -1
            nodes = base + np.arange(n)
            self.left[nodes[inner]] = base + tree.children_left[inner]
            self.right[nodes[inner]] = base + tree.children_right[inner]
            self.feature[nodes[inner]] = tree.feature[inner]
            self.threshold[nodes[inner]] = tree.threshold[inner]
            depth = np.asarray(tree.compute_node_depths(), dtype=np.float64)  # root = 1, as sklearn uses it
            self.leaf_value[nodes] = depth + _average_path_length(tree.n_node_samples[:n]) - 1.0
        self.max_depth = int(max(t.max_depth for t in trees))
        self.denominator = count * float(_average_path_length(np.array([model._max_samples]))[0])
        self.roots = np.arange(count, dtype=np.int64) * width

    def anomaly(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Anomaly score s(x) in (0, 1] for each row of ``x`` (about 0.5 normal, near 1 anomalous)."""
        data = np.atleast_2d(np.asarray(x, dtype=np.float64)).astype(np.float32).astype(np.float64)
        out = np.empty(len(data), dtype=np.float64)
        for j, row in enumerate(data):
            node = self.roots
            for _ in range(self.max_depth):
                node = np.where(row[self.feature[node]] <= self.threshold[node], self.left[node], self.right[node])
            out[j] = 2.0 ** (-float(self.leaf_value[node].sum()) / self.denominator)
        return out


@dataclass(frozen=True)
class ScoringConfig:
    """How rule hits and the model combine into ``fraud_score`` (noisy-OR, in [0, 1])."""

    rule_weights: dict[str, float] = field(
        default_factory=lambda: {
            r.VELOCITY: 0.80,
            r.IMPOSSIBLE_TRAVEL: 0.85,
            r.HIGH_VALUE: 0.80,
            r.CARD_TESTING: 0.85,
            r.UNUSUAL_HOUR_CATEGORY: 0.75,
        }
    )
    model_weight: float = 0.5  # the model alone never reaches the default threshold (0.7)
    threshold: float = 0.7


def normalise_model_score(anomaly: float, offset: float, scale: float) -> float:
    """Map the raw anomaly score to [0, 1]: 0 at the training median, 1 at its 99.9th percentile."""
    if scale <= 0:
        return 0.0
    return min(1.0, max(0.0, (anomaly - offset) / scale))


def combine(rules_fired: list[str] | tuple[str, ...], model_score: float, cfg: ScoringConfig) -> float:
    """Noisy-OR of independent signals: 1 - (1 - w_m * m) * prod(1 - w_rule)."""
    keep = 1.0 - cfg.model_weight * min(1.0, max(0.0, model_score))
    for rule in dict.fromkeys(rules_fired):
        keep *= 1.0 - cfg.rule_weights.get(rule, 0.0)
    return round(1.0 - keep, 6)


@dataclass(frozen=True)
class Alert:
    """One fraud alert; ``alert_id`` = ``transaction_id`` (one alert per transaction, idempotent)."""

    transaction_id: str
    customer_id: str
    store_id: str
    fraud_score: float
    model_score: float
    rules_fired: tuple[str, ...]
    model_version: str
    event_time: str
    amount: float
    retroactive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.transaction_id,
            "transaction_id": self.transaction_id,
            "customer_id": self.customer_id,
            "store_id": self.store_id,
            "fraud_score": self.fraud_score,
            "model_score": self.model_score,
            "rules_fired": list(self.rules_fired),
            "model_version": self.model_version,
            "event_time": self.event_time,
            "amount": self.amount,
            "retroactive": self.retroactive,
        }


class FraudScorer:
    """Scores one customer's transactions in order; used by the Flink job and the benchmark alike."""

    def __init__(
        self,
        forest: FlatForest | None,
        *,
        model_version: str = "none",
        score_offset: float = 0.5,
        score_scale: float = 0.25,
        rule_config: r.RuleConfig | None = None,
        scoring_config: ScoringConfig | None = None,
    ) -> None:
        self.forest = forest
        self.model_version = model_version
        self.score_offset = score_offset
        self.score_scale = score_scale
        self.rules = rule_config or r.RuleConfig()
        self.scoring = scoring_config or ScoringConfig()

    def model_score(self, vector: tuple[float, ...]) -> float:
        """The model's normalised score for a feature vector (0 without a model)."""
        if self.forest is None:
            return 0.0
        raw = float(self.forest.anomaly([vector])[0])
        return round(normalise_model_score(raw, self.score_offset, self.score_scale), 6)

    @property
    def model_can_alert_alone(self) -> bool:
        return combine((), 1.0, self.scoring) >= self.scoring.threshold

    def process(self, state: r.CustomerState, txn: Transaction) -> list[Alert]:
        """Score ``txn``, update ``state``; return its alert and retroactive alerts for its burst.

        The model is evaluated only when it can change the outcome or the alert's content: when a rule
        fired, or when the configured weights let the model alert on its own. With the default weights
        (any rule alone >= threshold, the model alone < threshold) that is 2-3 % of the events, which
        keeps per-event cost in Python low; the features are kept so a retroactive alert can score later.
        """
        hits = r.evaluate(state, txn, self.rules)
        vector = tuple(features(state, txn))
        model = self.model_score(vector) if (hits or self.model_can_alert_alone) else None
        fired = tuple(h.rule for h in hits)
        score = combine(fired, model or 0.0, self.scoring)
        burst: dict[str, list[str]] = {}
        for hit in hits:
            for earlier in hit.burst_ids:
                burst.setdefault(earlier, []).append(hit.rule)
        entry = r.update(state, txn, self.rules, hits, model, vector)
        alerts = []
        if score >= self.scoring.threshold:
            entry.alerted = True
            alerts.append(
                Alert(txn.transaction_id, txn.customer_id, txn.store_id, score, model or 0.0, fired,
                      self.model_version, txn.event_time, txn.amount, False)
            )
        if burst:
            for recent in state.recent:
                if recent.alerted or recent.transaction_id not in burst:
                    continue
                if recent.model_score is None:
                    recent.model_score = self.model_score(recent.features) if recent.features else 0.0
                rules_for = tuple(burst[recent.transaction_id])
                retro_score = combine(rules_for, recent.model_score, self.scoring)
                if retro_score >= self.scoring.threshold:
                    recent.alerted = True
                    alerts.append(
                        Alert(recent.transaction_id, txn.customer_id, recent.store_id, retro_score,
                              recent.model_score, rules_for, self.model_version, recent.event_time,
                              recent.amount, True)
                    )
        return alerts
