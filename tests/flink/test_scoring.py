from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from sklearn.ensemble import IsolationForest

from flink_app.detection import keyed
from flink_app.detection import rules as r
from flink_app.detection.scoring import (
    FEATURES,
    FlatForest,
    FraudScorer,
    ScoringConfig,
    combine,
    features,
    normalise_model_score,
)
from flink_app.model.artifact import load_scorer
from tests.flink.test_rules import stream_of, streams

CFG = ScoringConfig()


def test_combination_is_bounded_and_monotonic():
    assert combine([], 0.0, CFG) == 0.0
    everything = combine(list(r.RULE_NAMES), 1.0, CFG)
    assert 0.99 < everything <= 1.0
    one = combine([r.VELOCITY], 0.0, CFG)
    assert combine([r.VELOCITY, r.HIGH_VALUE], 0.0, CFG) > one
    assert combine([r.VELOCITY], 0.5, CFG) > one
    assert combine([r.VELOCITY, r.VELOCITY], 0.0, CFG) == one  # a rule counts once


def test_any_single_rule_alerts_but_the_model_alone_does_not():
    for rule in r.RULE_NAMES:
        assert combine([rule], 0.0, CFG) >= CFG.threshold, rule
    assert combine([], 1.0, CFG) < CFG.threshold


def test_model_score_normalisation_clips_to_unit_interval():
    assert normalise_model_score(0.40, 0.45, 0.2) == 0.0
    assert normalise_model_score(0.55, 0.45, 0.2) == pytest.approx(0.5)
    assert normalise_model_score(0.90, 0.45, 0.2) == 1.0


def test_flat_forest_matches_sklearn():
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(size=(500, len(FEATURES))), rng.normal(6, 1, size=(5, len(FEATURES)))])
    model = IsolationForest(n_estimators=40, max_samples=128, max_features=1.0, random_state=3).fit(x)
    np.testing.assert_allclose(FlatForest(model).anomaly(x[:60]), -model.score_samples(x[:60]), rtol=1e-9)
    np.testing.assert_allclose(FlatForest(model).anomaly(x[-5:]), -model.score_samples(x[-5:]), rtol=1e-9)


def test_features_have_the_declared_length(txn):
    assert len(features(r.CustomerState(), txn(0))) == len(FEATURES)


def test_velocity_burst_alerts_every_transaction_of_the_burst(txn):
    scorer = FraudScorer(None)
    state = r.CustomerState()
    alerts = []
    for i in range(6):
        alerts += scorer.process(state, txn(i, seconds=i * 8))
    ids = sorted(a.transaction_id for a in alerts)
    assert ids == [f"t-{i}" for i in range(6)]
    assert all(r.VELOCITY in a.rules_fired for a in alerts)
    assert sum(a.retroactive for a in alerts) == 4  # t-0..t-3 alerted when t-4 completed the burst
    assert all(0.0 <= a.fraud_score <= 1.0 for a in alerts)


def test_ordinary_stream_raises_no_alert(txn):
    scorer = FraudScorer(None)
    state = r.CustomerState()
    alerts = []
    for i in range(30):
        alerts += scorer.process(state, txn(i, seconds=i * 7200, amount=20.0 + i % 5))
    assert alerts == []


# ---- the job stores the state flat between events: that must not change a single alert -----------



_MODEL_SCORER = load_scorer()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_alerts_are_the_same_when_state_is_stored_flat_between_events(steps):
    transactions = stream_of(steps)
    in_memory = r.CustomerState()
    expected = [a for t in transactions for a in _MODEL_SCORER.process(in_memory, t)]
    stored = None
    actual = []
    for i, t in enumerate(transactions):
        state, timer = keyed.load(pickle.loads(pickle.dumps(stored)))  # noqa: S301 - our own bytes
        actual += _MODEL_SCORER.process(state, t)
        stored = keyed.store(state, i, timer or 0)
    assert actual == expected
    assert keyed.load(stored)[0] == in_memory


def test_evaluation_reports_false_alerts_per_legit_scenario():
    """``--labelled-input`` labels travel next to the events; a legit large purchase the rules flag is
    counted under its scenario, fraud under its pattern."""
    from flink_app.evaluation import evaluate
    from tests.flink.builders import make_event

    events_, labels = [], {}
    for i in range(8):  # a customer's ordinary history, an hour apart
        events_.append(make_event(i, seconds=i * 3600, amount=20.0 + i % 3))
        labels[f"t-{i}"] = "legit:ordinary"
    events_.append(make_event(8, seconds=9 * 3600, amount=900.0))  # legit, but 40 x the usual
    labels["t-8"] = "legit:large_legit"
    for j in range(9, 15):  # six payments in 50 s
        events_.append(make_event(j, seconds=10 * 3600 + (j - 9) * 10, amount=30.0, is_fraud_truth=True,
                                  fraud_pattern="velocity_burst"))
        labels[f"t-{j}"] = "velocity_burst"
    result = evaluate([json.dumps(e).encode() for e in events_], FraudScorer(None), labels)
    assert result["per_legit_scenario"]["large_legit"] == {
        "events": 1, "false_alerts": 1, "false_alert_rate": 1.0, "rules": {r.HIGH_VALUE: 1}}
    assert result["per_legit_scenario"]["ordinary"]["false_alerts"] == 0
    assert result["per_pattern"][r.VELOCITY]["recall"] == 1.0
    assert result["recall"] == 1.0 and result["precision"] == round(6 / 7, 4)
