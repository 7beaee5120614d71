"""The fraud detector's Python step when its rules run in Java: the model's score for each alert.

:class:`io.streamflow.flink.FraudRules` keeps the customers' state and decides the alerts (an alert is
raised exactly when a rule fires, see :func:`rules_decide_alerts`); for each alert it sends the
transaction, the rules, and what the model's features read of the state before the transaction
(:data:`CANDIDATE_FIELDS`). Here the features are computed by the same function as in
:class:`~flink_app.detection.scoring.FraudScorer`, scored by the same forest, and combined into the
same :class:`~flink_app.detection.scoring.Alert`: 2-3 % of the events reach Python instead of all.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from flink_app.detection import rules as r
from flink_app.detection.scoring import Alert, FraudScorer, ScoringConfig, combine, feature_vector

#: The candidate row (io.streamflow.flink.FraudRulesFunction.CANDIDATE_FIELDS; a test compares them). The
#: three ids arrive as base64 of their UTF-8 bytes (a Java String reaches Python through UTF-16, which
#: drops a leading U+FEFF, issue 17), see :func:`text`.
CANDIDATE_FIELDS = (
    "transaction_id", "customer_id", "store_id", "amount", "event_time", "event_ts", "lat", "lon", "rules",
    "retroactive", "count", "mean", "m2", "has_last", "last_ts", "last_lat", "last_lon", "last_60", "tiny_600",
    "new_category",
)


def rules_decide_alerts(scoring: ScoringConfig) -> bool:
    """True when an alert is raised exactly when a rule fires, whatever the model says: every rule alone
    reaches the threshold and the model alone cannot (the defaults). Only then may the rules run
    without the model (in Java); otherwise the detector keeps its all-Python scorer."""
    alone = combine((), 1.0, scoring) >= scoring.threshold
    return not alone and all(combine((rule,), 0.0, scoring) >= scoring.threshold for rule in r.RULE_NAMES)


def text(encoded: str) -> str:
    """An id of the candidate row, decoded."""
    return base64.b64decode(encoded).decode("utf-8")


def feature_vector_of(row: Sequence[Any]) -> list[float]:
    """The model's features for the candidate's transaction (what FraudScorer computed before it)."""
    (_id, _customer, _store, amount, _time, event_ts, lat, lon, _rules, _retro, count, mean, m2, has_last, last_ts,
     last_lat, last_lon, last_60, tiny_600, new_category) = row
    if not has_last:
        last_ts = last_lat = last_lon = None
    return feature_vector(count, mean, m2, last_ts, last_lat, last_lon, last_60, tiny_600, new_category, amount,
                          event_ts, lat, lon)


def alert_from_candidate(row: Sequence[Any], scorer: FraudScorer) -> Alert:
    """The alert FraudScorer.process raises for this candidate: its score with the model's."""
    transaction_id, customer_id, store_id, amount, event_time, _ts, _lat, _lon, fired, retroactive = row[:10]
    model = scorer.model_score(tuple(feature_vector_of(row)))
    rules_fired = tuple(fired.split(","))
    score = combine(rules_fired, model, scorer.scoring)
    return Alert(text(transaction_id), text(customer_id), text(store_id), score, model, rules_fired,
                 scorer.model_version, event_time, amount, bool(retroactive))
