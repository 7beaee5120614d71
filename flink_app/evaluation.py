"""Offline detection quality: the job's own scorer over a labelled stream, against its labels.

Same code path as the fraud_detector job: events are parsed by ``flink_app.events`` and fed, in
stream order, to one :class:`FraudScorer`, the customer's state stored between events exactly as
the job keeps it in Flink (``flink_app.detection.keyed``: a flat tuple, pickled) (Kafka keeps
per-customer order: key = customer_id). Only the Flink runtime is left out.

Two sources of labels:
- the generator's stream (``--seed/--events/--fraud-rate``): ``is_fraud_truth``/``fraud_pattern``
  are read here, to score the detector, never by it;
- ``--labelled-input FILE``: JSON lines ``{"label": ..., "event": "<raw event>"}`` where the label is
  a fraud pattern or ``legit:<scenario>`` (``bench/independent_stream.py``), so false alerts are
  reported per legit scenario.

    python -m flink_app.evaluation --seed 2026 --events 100000 --fraud-rate 0.02
    python -m flink_app.evaluation --labelled-input /tmp/stream.jsonl
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flink_app.detection import keyed
from flink_app.detection.rules import RULE_NAMES
from flink_app.detection.scoring import FraudScorer
from flink_app.events import Transaction, parse_event
from flink_app.model.artifact import ARTIFACT_DIR, load_scorer
from flink_app.model.train import REPO_ROOT, generator_command, generator_events


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


LEGIT = "legit:"


def labelled_lines(path: Path) -> tuple[Iterator[bytes], dict[str, str]]:
    """Events and transaction_id -> label from a ``--labelled-input`` file."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    labels = {json.loads(row["event"])["transaction_id"]: str(row["label"]) for row in rows}
    return (row["event"].encode() for row in rows), labels


def evaluate(lines: Iterable[bytes], scorer: FraudScorer,
             given_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Precision/recall overall, per pattern and per rule; false alerts per legit scenario.

    ``given_labels`` (transaction_id -> pattern or ``legit:<scenario>``) replaces the events' own
    ``is_fraud_truth``/``fraud_pattern`` fields when given.
    """
    stored: dict[str, keyed.Stored] = {}
    labels: dict[str, str | None] = {}
    scenario: dict[str, str] = {}
    rules_of: dict[str, set[str]] = {}
    invalid = 0
    began = time.perf_counter()
    for line in lines:
        txn = parse_event(line)
        if not isinstance(txn, Transaction):
            invalid += 1
            continue
        if given_labels is not None:
            label = given_labels[txn.transaction_id]
            labels[txn.transaction_id] = None if label.startswith(LEGIT) else label
            scenario[txn.transaction_id] = label[len(LEGIT):] if label.startswith(LEGIT) else label
        else:
            labels[txn.transaction_id] = txn.payload.get("fraud_pattern") if txn.payload.get("is_fraud_truth") else None
            scenario[txn.transaction_id] = labels[txn.transaction_id] or "generator_legit"
        # the state goes through the job's own storage format between events (pickled flat tuple)
        previous = stored.get(txn.customer_id)
        state, timer = keyed.load(pickle.loads(pickle.dumps(previous)))  # noqa: S301 - bytes made just above
        for alert in scorer.process(state, txn):
            rules_of.setdefault(alert.transaction_id, set()).update(alert.rules_fired)
        stored[txn.customer_id] = keyed.store(state, 0, timer or 0)
    elapsed = time.perf_counter() - began
    fraud = {t for t, p in labels.items() if p}
    alerted = set(rules_of)
    true_positive = len(fraud & alerted)
    result: dict[str, Any] = {
        "events": len(labels),
        "invalid": invalid,
        "fraud_events": len(fraud),
        "alerts": len(alerted),
        "precision": _ratio(true_positive, len(alerted)),
        "recall": _ratio(true_positive, len(fraud)),
        "events_per_s": round(len(labels) / elapsed) if elapsed else None,
        "per_pattern": {},
        "per_rule": {},
        "per_legit_scenario": {},
        "false_positive_rules": dict(Counter(r for t in alerted - fraud for r in rules_of[t])),
        "alert_ids": sorted(alerted),
    }
    for pattern in RULE_NAMES:
        of_pattern = {t for t, p in labels.items() if p == pattern}
        flagged = {t for t, rules in rules_of.items() if pattern in rules}
        result["per_pattern"][pattern] = {
            "events": len(of_pattern),
            "recall": _ratio(len(of_pattern & alerted), len(of_pattern)),
            "recall_by_own_rule": _ratio(len(of_pattern & flagged), len(of_pattern)),
            "precision": _ratio(len(flagged & fraud), len(flagged)),
        }
        result["per_rule"][pattern] = {
            "alerts": len(flagged),
            "precision": _ratio(len(flagged & fraud), len(flagged)),
            "precision_same_pattern": _ratio(len(flagged & of_pattern), len(flagged)),
        }
    legit_scenarios = sorted({s for t, s in scenario.items() if labels[t] is None})
    for name in legit_scenarios:
        of_scenario = {t for t, s in scenario.items() if s == name and labels[t] is None}
        false_alerts = of_scenario & alerted
        result["per_legit_scenario"][name] = {
            "events": len(of_scenario),
            "false_alerts": len(false_alerts),
            "false_alert_rate": _ratio(len(false_alerts), len(of_scenario)),
            "rules": dict(Counter(r for t in false_alerts for r in rules_of[t])),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--model-dir", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--model-version", default="v1")
    parser.add_argument("--generator-python", default=str(REPO_ROOT / ".streamflow/venvs/generator/bin/python"))
    parser.add_argument("--alert-ids", action="store_true",
                        help="also list every alerted transaction_id (to compare with what a Flink run wrote)")
    parser.add_argument("--labelled-input", type=Path, default=None,
                        help="JSON lines {label, event} instead of the generator (bench/independent_stream.py)")
    args = parser.parse_args(argv)
    python = args.generator_python if Path(args.generator_python).exists() else sys.executable
    scorer = load_scorer(args.model_dir, args.model_version, args.threshold)
    if args.labelled_input is not None:
        lines, labels = labelled_lines(args.labelled_input)
        result = evaluate(lines, scorer, labels)
        result["generator"] = f"labelled input {args.labelled_input}"
    else:
        result = evaluate(generator_events(args.seed, args.events, args.fraud_rate, python), scorer)
        result["generator"] = " ".join(["python", *generator_command("", args.seed, args.events, args.fraud_rate)[1:]])
    if not args.alert_ids:
        result.pop("alert_ids")
    result["model_version"] = scorer.model_version
    result["threshold"] = args.threshold
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
