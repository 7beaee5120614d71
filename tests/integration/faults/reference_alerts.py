"""The alerts a fault-free fraud_detector produces for a stream: the reference the fault tests compare
the real job's ``fraud.alerts`` and ``bronze.raw_fraud_alerts`` against.

Runs in the flink venv (the detector's code needs PyFlink, numpy, scikit-learn): reads JSON lines
``{"partition": p, "offset": o, "value": <base64 or null>}`` on stdin, each partition in offset order,
and prints the alerts as JSON. It is not a re-implementation: it builds the job's own keyed operator
(``fraud_detector.Score``, with the arguments ``main`` gives it, parsed by the job's own option
parser from the spec's job args) and calls its ``open`` and ``process_element`` with an in-memory
keyed state and a context keyed like the job keys (the event's ``customer_id``; events without one
are dropped, as the job's SQL drops a NULL key). The detector keeps per-customer order per Kafka
partition and every customer's events come from one partition (the producer keys by customer), so
feeding partitions one after the other is an order Flink can produce; with the same empty state the
test gave the job, the output is what a run without any fault produces.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any


class _Timers:
    def current_processing_time(self) -> int:
        return 0

    def register_processing_time_timer(self, timestamp: int) -> None:
        """Expiry timers (days) never fire within a test."""


class _Context:
    def __init__(self) -> None:
        self.key: str | None = None
        self.timers = _Timers()

    def get_current_key(self) -> str | None:
        return self.key

    def timer_service(self) -> _Timers:
        return self.timers


class _State:
    """A keyed ValueState: one value per current key of ``context``."""

    def __init__(self, context: _Context) -> None:
        self.context = context
        self.values: dict[str | None, Any] = {}

    def value(self) -> Any:
        return self.values.get(self.context.key)

    def update(self, value: Any) -> None:
        self.values[self.context.key] = value

    def clear(self) -> None:
        self.values.pop(self.context.key, None)


class _RuntimeContext:
    def __init__(self, context: _Context) -> None:
        self.context = context

    def get_state(self, descriptor: Any) -> _State:
        return _State(self.context)


def _key(raw: bytes | None) -> str | None:
    """The job's key: ``TO_BASE64(JSON_VALUE(CAST(value AS STRING), '$.customer_id'))`` (NULL -> dropped;
    an unpaired surrogate becomes "?" in Flink's UTF-8, as ``errors="replace"`` does here)."""
    if raw is None:
        return None
    try:
        document = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # JSON_VALUE returns NULL on what it cannot parse
        return None
    value = document.get("customer_id") if isinstance(document, dict) else None
    if not isinstance(value, str):
        return None
    return base64.b64encode(value.encode("utf-8", errors="replace")).decode("ascii")


def main(argv: list[str]) -> int:
    from flink_app import config, events
    from flink_app.jobs import fraud_detector

    # the detector's own options, as its main() declares them on top of the shared parser
    parser = config.base_parser(fraud_detector.NAME)
    parser.add_argument("--alerts-topic", default="fraud.alerts")
    parser.add_argument("--alert-threshold", type=float, default=0.7)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model-version", default="v1")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    parser.add_argument("--state-ttl-days", type=int, default=30)
    args = config.parse(parser, argv)
    score = fraud_detector.Score(args.model_dir, args.model_version, args.alert_threshold, args.state_ttl_days,
                                 str(events.schema_path()), args.max_event_bytes, args.max_future_skew_seconds)
    context = _Context()
    score.open(_RuntimeContext(context))  # type: ignore[no-untyped-call]

    alerts: list[dict[str, Any]] = []
    messages = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        raw = base64.b64decode(record["value"]) if record["value"] is not None else None
        messages += 1
        context.key = _key(raw)
        if context.key is None:
            continue
        for row in score.process_element(raw, context) or ():  # type: ignore[no-untyped-call]
            payload = json.loads(row[7])
            alerts.append({"alert_id": row[0], "transaction_id": row[1], "customer_id": row[2],
                           "fraud_score": payload["fraud_score"], "model_score": payload["model_score"],
                           "rules_fired": payload["rules_fired"]})
    json.dump({"messages": messages, "alerts": alerts}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
