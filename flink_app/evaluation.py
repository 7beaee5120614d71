"""Offline detection quality: the job's own scorer over a generator stream, against its labels.

Same code path as the fraud_detector job: events are parsed by ``flink_app.events`` and fed, in
stream order, to one :class:`FraudScorer` with one :class:`CustomerState` per customer, exactly as
Flink's keyed state would see them (Kafka keeps per-customer order: key = customer_id). Only the
Flink runtime is left out. ``is_fraud_truth`` is read here, to score the detector, never by it.

    python -m flink_app.evaluation --seed 2026 --events 100000 --fraud-rate 0.02
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flink_app.detection.rules import RULE_NAMES, CustomerState
from flink_app.detection.scoring import FraudScorer
from flink_app.events import Transaction, parse_event
from flink_app.model.artifact import ARTIFACT_DIR, load_scorer
from flink_app.model.train import REPO_ROOT, generator_command, generator_events


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def evaluate(lines: Iterable[bytes], scorer: FraudScorer) -> dict[str, Any]:
    states: dict[str, CustomerState] = {}
    labels: dict[str, str | None] = {}
    rules_of: dict[str, set[str]] = {}
    invalid = 0
    began = time.perf_counter()
    for line in lines:
        txn = parse_event(line)
        if not isinstance(txn, Transaction):
            invalid += 1
            continue
        labels[txn.transaction_id] = txn.payload.get("fraud_pattern") if txn.payload.get("is_fraud_truth") else None
        for alert in scorer.process(states.setdefault(txn.customer_id, CustomerState()), txn):
            rules_of.setdefault(alert.transaction_id, set()).update(alert.rules_fired)
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
        "false_positive_rules": dict(Counter(r for t in alerted - fraud for r in rules_of[t])),
    }
    for pattern in RULE_NAMES:
        of_pattern = {t for t, p in labels.items() if p == pattern}
        flagged = {t for t, rules in rules_of.items() if pattern in rules}
        result["per_pattern"][pattern] = {
            "events": len(of_pattern),
            "recall": _ratio(len(of_pattern & alerted), len(of_pattern)),
            "recall_by_own_rule": _ratio(len(of_pattern & flagged), len(of_pattern)),
        }
        result["per_rule"][pattern] = {
            "alerts": len(flagged),
            "precision": _ratio(len(flagged & fraud), len(flagged)),
            "precision_same_pattern": _ratio(len(flagged & of_pattern), len(flagged)),
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
    args = parser.parse_args(argv)
    python = args.generator_python if Path(args.generator_python).exists() else sys.executable
    scorer = load_scorer(args.model_dir, args.model_version, args.threshold)
    result = evaluate(generator_events(args.seed, args.events, args.fraud_rate, python), scorer)
    result["generator"] = " ".join(["python", *generator_command("", args.seed, args.events, args.fraud_rate)[1:]])
    result["model_version"] = scorer.model_version
    result["threshold"] = args.threshold
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
