"""Cost of the bronze sink paths of ADR 0009: plain upsert vs inbox + routing trigger, with and without
the driver's ``reWriteBatchedInserts``; and the cost of parse_event's sink-limit checks.

The JDBC part runs ``bench/SinkCost.java`` with the Flink connector's own ``PostgresDialect`` (the exact
upsert text the sink sends) and the PostgreSQL driver the jobs use, autocommit batches like Flink's
JDBC sink, against the warehouse of the local stack (``streamflow up --only postgres``). Besides wall
time it reads the PostgreSQL backend's CPU time from /proc, which a busy host disturbs much less.
Sizes: ROWS per path, phase and round; batches of 2000 rows (the transaction processor's
``--sink-batch-size``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from streamflow.runtime.flink_local_config import pyflink_home
from streamflow.settings import Settings, load_settings
from streamflow.warehouse import apply_migrations

ROWS = 100_000
BATCH = 2000
ROUNDS = 2


def _jdbc(settings: Settings, rows: int) -> list[dict[str, Any]]:
    jars = sorted((settings.jars_dir / "flink").glob("*.jar")) + sorted((pyflink_home(settings) / "lib").glob("*.jar"))
    source = Path(__file__).with_name("SinkCost.java")
    out = subprocess.run(
        ["java", "-cp", ":".join(map(str, jars)), str(source), settings.warehouse_jdbc_url, settings.postgres_user,
         settings.resolved_postgres_password, str(rows), str(BATCH), str(ROUNDS)],
        capture_output=True, text=True, check=True, timeout=1800,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"path"')]


def _parse_cost() -> float:
    """parse_event microseconds per ordinary event (process CPU time, best of 15 runs of 5000 events)."""
    from flink_app import events

    validator = events.load_validator()
    messages = [json.dumps({
        "schema_version": 1, "transaction_id": f"t-42-{i:09d}", "customer_id": f"C{i % 5000:06d}",
        "card_id": "K000123", "store_id": "S0042", "store_category": "grocery", "amount": 10 + i % 400 + 0.25,
        "currency": "EUR", "channel": "pos", "event_time": "2026-12-02T10:00:00.123Z", "lat": 48.137,
        "lon": 11.575, "is_fraud_truth": False, "fraud_pattern": None}).encode() for i in range(5000)]
    runs = []
    for _ in range(15):
        began = time.process_time()
        for message in messages:
            events.parse_event(message, validator)
        runs.append((time.process_time() - began) / len(messages) * 1e6)
    return round(min(runs), 1)


def run(rows: int = ROWS) -> list[dict[str, Any]]:
    settings = load_settings()
    apply_migrations(settings)
    load = os.getloadavg()[0]
    results = _jdbc(settings, rows)
    figures: list[dict[str, Any]] = []
    by: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault((r["path"], r["phase"], r["rewrite"]), []).append(r)
    for (path, phase, rewrite), runs in sorted(by.items()):
        cpu = statistics.median(r["server_cpu_us_per_row"] for r in runs)
        wall = statistics.median(r["us_per_row"] for r in runs)
        figures.append({
            "figure": f"bronze sink {path}, {phase}, reWriteBatchedInserts={str(rewrite).lower()}: "
                      "PostgreSQL CPU per row",
            "value": round(cpu, 1), "unit": "us/row", "goal": "report",
            "notes": f"wall {wall:.0f} us/row; {runs[0]['rows']} rows x {len(runs)} rounds, batches of {BATCH}; "
                     f"1-min load average before {load:.1f}",
        })
    figures.append({"figure": "parse_event per ordinary event (strict JSON + sink limits + schema)",
                    "value": _parse_cost(), "unit": "us/event", "goal": "<= 40",
                    "notes": "process CPU time, best of 15 x 5000 events; runs 3x per event (one per job)"})
    return figures
