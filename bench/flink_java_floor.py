"""What any design keeping the real bronze sink costs at least (issue 13): Kafka -> bronze with no Python.

The goal is 10,000 events/s generator -> bronze with alerts and metrics caught up, on 2 cores: a budget
of 200 us of CPU per event for everything (broker, database, generator, the three jobs). This bench
measures the part no design can drop - read the event from Kafka, take its id and time in Java
(``JSON_VALUE``), upsert it into bronze - as machine-wide CPU per event (``/proc/stat``: every process,
kernel included), with both cores (parallelism 2), on a 300k-event backlog (``bench/flink_sql_ceiling.py``
through ``bench/flink_stages.py``): once straight into ``bronze.raw_transactions`` and once through
ADR 0009's trigger-routed inbox, which is what the transaction processor writes, and once more with each
event validated in Java by the sound shape regex (``flink_app.shape_check``: every event of the backlog
has the shape, so all of them must reach bronze). What remains of the 200 us is what validation,
detection and metrics may cost per event.

Starting state: PostgreSQL and Kafka of the default state folder (started if stopped; bronze as it is),
no Flink cluster, a fresh topic preloaded by the generator (seed 4242); each variant's cluster is
started for it and deleted after it.
"""

from __future__ import annotations

from typing import Any

from bench.flink_stages import run_variants

VARIANTS = ("sql-ceiling-jdbc-rewrite-p2", "sql-ceiling-inbox-p2", "sql-ceiling-shape-inbox-p2")
#: 2 cores for 10,000 events/s
BUDGET_US = 2 * 1e6 / 10_000


def run() -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    for r in run_variants(list(VARIANTS)):
        if "events_per_s" not in r:
            raise RuntimeError(f"{r['variant']} did not drain: {r.get('done')}")
        machine_us = r["machine_cpu_ms_per_1k_events"]  # ms per 1k events = us per event
        notes = (f"{r['description']}; drained in {r['seconds']} s; CPU us/event: machine {machine_us}, TaskManager "
                 f"{r['tm_cpu_ms_per_1k_events']}, PostgreSQL {r.get('postgres_cpu_ms_per_1k_events')}, Kafka "
                 f"{r.get('kafka_cpu_ms_per_1k_events')}; load average during {r['load_average_during']}")
        figures += [
            {"figure": f"{r['variant']}: drain rate", "value": r["events_per_s"], "unit": "events/s",
             "goal": "informational", "notes": notes},
            {"figure": f"{r['variant']}: machine CPU per event", "value": machine_us, "unit": "us",
             "goal": "informational", "notes": notes},
            {"figure": f"{r['variant']}: left of the 10k/s budget ({BUDGET_US:.0f} us) for validation, detection "
                       "and metrics", "value": round(BUDGET_US - machine_us, 1), "unit": "us/event",
             "goal": "informational", "notes": notes},
        ]
    return figures
