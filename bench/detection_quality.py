"""Detection quality of the fraud detector's scorer on 100k generator events (2 % fraud, fixed seed).

Runs ``flink_app.evaluation`` in the flink venv: the job's own parser and FraudScorer fed in stream
order with per-customer state (the Flink runtime itself is left out; see "notes"). Goals: overall
precision >= 0.90 and recall >= 0.80.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from streamflow.settings import load_settings

SEED = 2026
EVENTS = 100_000
FRAUD_RATE = 0.02


def run() -> list[dict[str, Any]]:
    settings = load_settings()
    completed = subprocess.run(
        [str(settings.venv_python("flink")), "-m", "flink_app.evaluation", "--seed", str(SEED),
         "--events", str(EVENTS), "--fraud-rate", str(FRAUD_RATE)],
        cwd=settings.repo_root, check=True, capture_output=True, text=True,
    )
    result = json.loads(completed.stdout)
    notes = (
        f"offline: the fraud_detector's own parser + FraudScorer (rules + IsolationForest {result['model_version']}, "
        f"threshold {result['threshold']}) fed in stream order with per-customer state, as the keyed Flink operator "
        f"sees it; Flink itself not in the loop. Stream: {result['generator']}. "
        f"{result['events']} events, {result['fraud_events']} fraud, {result['alerts']} alerts."
    )
    figures: list[dict[str, Any]] = [
        {"figure": "overall precision", "value": result["precision"], "unit": "ratio", "goal": ">= 0.90",
         "notes": notes},
        {"figure": "overall recall", "value": result["recall"], "unit": "ratio", "goal": ">= 0.80", "notes": notes},
    ]
    for pattern, figures_of in result["per_pattern"].items():
        figures.append({"figure": f"recall {pattern}", "value": figures_of["recall"], "unit": "ratio",
                        "goal": ">= 0.80", "notes": f"{figures_of['events']} labelled events"})
    for rule, figures_of in result["per_rule"].items():
        figures.append({"figure": f"precision of rule {rule}", "value": figures_of["precision"], "unit": "ratio",
                        "goal": ">= 0.90",
                        "notes": f"{figures_of['alerts']} alerts carrying the rule; share of them labelled "
                                 f"{rule}: {figures_of['precision_same_pattern']}"})
    figures.append({"figure": "offline scorer throughput (parse + score, 1 core)", "value": result["events_per_s"],
                    "unit": "events/s", "goal": "informational", "notes": "includes JSON parse + schema check"})
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
