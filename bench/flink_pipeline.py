"""End-to-end Flink pipeline: throughput, event->bronze latency, memory of the local Flink cluster.

1. Sustained throughput: the generator (``--events-per-second 0``) writes N events to Kafka while
   all three jobs run; measured until bronze holds all N (transaction_processor) and until every
   job's consumer group has committed offsets up to the end of the topic (all three jobs).
2. Latency at 1,000 events/s: a probe producer sends crafted events at 1,000/s and a poller records
   when each row becomes visible in bronze (p50/p99, goal p99 <= 2 s; the local checkpoint interval
   is disclosed - the JDBC sink flushes on its own interval or batch size, independent of checkpoints).
3. Memory: RSS of each distinct local cluster's JobManager and TaskManager JVM (the catalog's jobs share
   one, ADR 0013; Python runs inside the TM in thread mode) and their total (goal <= 3 GiB).

Runs on a fresh stack of its own (wiped state folder, free ports; ``bench.bootstrap_pipeline.fresh_stack``),
never on yours.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from streamflow import consumer_lag
from streamflow.catalog import flink_jobs
from streamflow.flink_spec import FlinkJobSpec, load_all
from streamflow.runtime import flink_local_config, flink_local_lifecycle, flink_local_rest
from streamflow.settings import Settings
from streamflow.topics import ensure_topics
from streamflow.warehouse import apply_migrations

#: Long enough to be sustained: offsets are committed on checkpoints (every 10 s locally), so a job is seen
#: caught up up to 10 s late; at 10,000 events/s that is at most 1/7 of a 600k run (it was half of a 200k run).
THROUGHPUT_EVENTS = 600_000
LATENCY_RATE = 1_000
LATENCY_SECONDS = 30
JOBS = tuple(job.name for job in flink_jobs())


def _bronze_count(dsn: str, prefix: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.raw_transactions WHERE transaction_id LIKE %s",
                           (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


def _rss_mb(pid_file: Path) -> float | None:
    try:
        pid = int(json.loads(pid_file.read_text())["pid"])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, KeyError):
        return None
    return None


def throughput(settings: Settings, groups: dict[str, str]) -> list[dict[str, Any]]:
    drained_s = consumer_lag.wait_until_caught_up(settings, groups.values(), timeout_s=900)
    seed = int(time.time()) % 1_000_000_000
    prefix = f"t-{seed}-"
    generator = [str(settings.venv_python("generator")), "-m", "generator", "--seed", str(seed),
                 "--total-events", str(THROUGHPUT_EVENTS), "--events-per-second", "0",
                 # event times end about now: a stream produced as fast as possible would otherwise run
                 # ahead of the wall clock, and the processor sends future events to the DLQ (ADR 0009)
                 "--backfill",
                 "--bootstrap-servers", settings.kafka_bootstrap, "--topic", settings.topic_transactions]
    began = time.monotonic()
    subprocess.run(generator, cwd=settings.repo_root, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    produced_s = time.monotonic() - began
    ends = consumer_lag.end_offsets(settings)
    bronze_s = None
    caught_up: dict[str, float] = {}
    deadline = began + 900
    while time.monotonic() < deadline and (bronze_s is None or len(caught_up) < len(groups)):
        if bronze_s is None and _bronze_count(settings.warehouse_dsn, prefix) >= THROUGHPUT_EVENTS:
            bronze_s = time.monotonic() - began
        for job, group in groups.items():
            if job not in caught_up and consumer_lag.has_caught_up(settings, group, ends):
                caught_up[job] = time.monotonic() - began
        time.sleep(1.0)
    figures = [{"figure": "generator -> Kafka (producer only)", "value": round(THROUGHPUT_EVENTS / produced_s),
                "unit": "events/s", "goal": "informational", "notes": f"{THROUGHPUT_EVENTS} events"}]
    notes = (f"{THROUGHPUT_EVENTS} generator events produced as fast as possible while all three jobs run "
             f"({', '.join(f'{n} p={s.parallelism}' for n, s in load_all().items() if n in groups)}) on one 2-core "
             f"machine with Kafka and PostgreSQL; "
             f"started once every job had caught up with the topic ({drained_s:.0f} s of earlier backlog drained)")
    figures.append({"figure": "sustained throughput generator -> bronze committed (transaction_processor)",
                    "value": round(THROUGHPUT_EVENTS / bronze_s) if bronze_s else None, "unit": "events/s",
                    "goal": ">= 10000", "notes": notes + (f"; {bronze_s:.0f} s end to end" if bronze_s else
                                                          "; did not finish within 900 s")})
    slowest = max(caught_up.values()) if len(caught_up) == len(groups) else None
    figures.append({"figure": "sustained throughput, all three jobs caught up (offsets committed)",
                    "value": round(THROUGHPUT_EVENTS / slowest) if slowest else None, "unit": "events/s",
                    "goal": ">= 10000",
                    "notes": "per job seconds to commit the end offsets: "
                             + ", ".join(f"{j} {s:.0f}" for j, s in caught_up.items())
                             + "; offsets are committed on checkpoints "
                             + f"(every {settings.flink_checkpoint_interval_s} s)"})
    return figures


def _arg(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1] if flag in args else "default"


def latency(settings: Settings) -> list[dict[str, Any]]:
    processor = load_all()["transaction-processor"]
    run = uuid.uuid4().hex[:8]
    prefix = f"lat-{run}-"
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT transaction_id FROM bronze.raw_transactions WHERE transaction_id LIKE %s "
                    "AND ingested_at > now() - interval '60 seconds'", (prefix + "%",)).fetchall()
                now = time.time()
                for (txn_id,) in rows:
                    seen.setdefault(txn_id, now)
                time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})
    total = LATENCY_RATE * LATENCY_SECONDS
    began = time.monotonic()
    for i in range(total):
        target = began + i / LATENCY_RATE
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        txn_id = f"{prefix}{i}"
        now = datetime.now(UTC)
        customer = f"LAT{i % 500:04d}"
        event = {"schema_version": 1, "transaction_id": txn_id, "customer_id": customer,
                 "card_id": f"K{i % 500:04d}", "store_id": f"LATS{i % 20}", "store_category": "grocery",
                 "amount": 10.0 + i % 50, "currency": "EUR", "channel": "pos",
                 "event_time": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                 "lat": 52.52, "lon": 13.405, "is_fraud_truth": False, "fraud_pattern": None}
        producer.produce(settings.topic_transactions, key=customer, value=json.dumps(event).encode())
        sent[txn_id] = time.time()
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < total:
        time.sleep(0.5)
    stop.set()
    poller.join(5)
    latencies = sorted(seen[t] - sent[t] for t in seen if t in sent)
    if not latencies:
        return [{"figure": "event -> bronze latency p99 @ 1,000 events/s", "value": None, "unit": "s",
                 "goal": "informational", "notes": "no probe row became visible"}]

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    bundle_ms = processor.flink_configuration.get("python.fn-execution.bundle.time", "1000 (default)")
    notes = (f"{total} probe events at {LATENCY_RATE}/s, {len(latencies)} seen; poll resolution 0.1 s; "
             f"transaction-processor JDBC sink flush every {_arg(processor.args, '--sink-batch-interval')} or "
             f"{_arg(processor.args, '--sink-batch-size')} rows, Python bundle time {bundle_ms} ms; local "
             f"checkpoint interval {settings.flink_checkpoint_interval_s} s (bronze writes do not wait for it)")
    return [
        {"figure": "event -> bronze latency p50 @ 1,000 events/s", "value": pct(0.50), "unit": "s",
         "goal": "report", "notes": notes},
        {"figure": "event -> bronze latency p99 @ 1,000 events/s", "value": pct(0.99), "unit": "s",
         "goal": "<= 2", "notes": notes},
    ]


def memory(settings: Settings) -> list[dict[str, Any]]:
    """RSS of the streaming layer: each distinct local cluster once (the catalog's jobs share one, ADR 0013;
    counting it per job would triple it), and their sum against the issue's 3 GiB goal."""
    clusters: dict[Path, list[FlinkJobSpec]] = {}
    for spec in load_all().values():
        clusters.setdefault(flink_local_config.layout(spec, settings).jobmanager_pid.path, []).append(spec)
    figures, total = [], 0.0
    for members in clusters.values():
        paths = flink_local_config.layout(members[0], settings)
        jm, tm = _rss_mb(paths.jobmanager_pid.path), _rss_mb(paths.taskmanager_pid.path)
        total += (jm or 0) + (tm or 0)
        names = ", ".join(spec.name for spec in members)
        figures.append({"figure": f"RSS Flink cluster {paths.cluster} JobManager + TaskManager ({names})",
                        "value": round((jm or 0) + (tm or 0), 1), "unit": "MiB", "goal": "informational",
                        "notes": f"JM {jm} MiB, TM {tm} MiB (the TM includes the embedded Python of every job on "
                                 f"it); measured right after the throughput and latency runs"})
    figures.append({"figure": "RSS of the whole streaming layer (every local Flink JVM)", "value": round(total, 1),
                    "unit": "MiB", "goal": "<= 3072",
                    "notes": f"{len(clusters)} cluster(s) for {sum(len(m) for m in clusters.values())} jobs"})
    return figures


def run() -> list[dict[str, Any]]:
    """On a fresh stack, as a new user has it and as issue 13's goal states it: a wiped state folder
    (empty warehouse and topics, no checkpoint), PostgreSQL, Kafka and an idle Airflow started by the
    bench, the first start of every job. (Run on a long-lived stack, the figure fell with every run:
    1,725 -> 1,545 -> 1,076 events/s in three runs, each adding 230k rows to bronze and resuming the jobs.)"""
    from bench.bootstrap_pipeline import fresh_stack

    figures: list[dict[str, Any]] = []
    with fresh_stack() as (settings, timings):
        apply_migrations(settings)
        ensure_topics(settings)
        specs = load_all()
        handles = {name: flink_local_lifecycle.deploy(specs[name], settings) for name in JOBS}
        backends = {name: flink_local_rest.job_state_backend(specs[name], settings, handle.job_id)
                    for name, handle in handles.items()}
        groups = {name: specs[name].kafka_group_id for name in JOBS}
        figures += throughput(settings, groups)
        figures += latency(settings)
        figures += memory(settings)
        # issue 13: a figure says which state it started from (and how busy the shared machine was)
        start = (f"starting state: a fresh state folder (empty warehouse and topics, no checkpoint), PostgreSQL, "
                 f"Kafka and Airflow (idle) started by the bench in {timings['stack']:.0f} s, first start of every "
                 "job; state backends: " + ", ".join(f"{n} {backends[n]}" for n in JOBS)
                 + f"; load average at the end {os.getloadavg()[0]:.1f}")
        for figure in figures:
            figure["notes"] = f"{figure.get('notes', '')}; {start}"
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
