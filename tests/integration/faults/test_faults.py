"""Faults mid-stream on the real local stack: nothing lost, nothing duplicated, every bad event in the DLQ.

Each case runs the real generator (a subprocess, as the DAG runs it) with a ledger and 1 % malformed
events of every kind it can make, injects one fault a few seconds into the stream, lets the platform
recover, and then reconciles the ledger against what landed:

* bronze holds exactly the delivered valid events, each from the Kafka partition/offset the ledger
  recorded (0 lost, 0 duplicated), and Kafka itself holds each message once (the topic grew by
  exactly the number of deliveries);
* ``dlq.errors`` (read_committed) holds each malformed message exactly once, with the reason
  expected for its kind;
* every fraud alert of the run belongs to a bronze transaction, once.

Recovery time is "fault injected -> bronze grows past the row count read when the failed part was
back" (for the TaskManager: when a new one was started; the job then restores from its checkpoint). The figures
are written to ``test-output/reliability.json``; ``make bench B=reliability`` runs this module and
puts them in bench/BENCHMARKS.md.

Sizes are bounded for CI (2 cores shared by three Flink job clusters, Kafka, PostgreSQL and
Airflow): STREAMFLOW_FAULT_EVENTS events (default 12,000) at STREAMFLOW_FAULT_RATE events/s
(default 1,000).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from streamflow import consumer_lag
from streamflow.flink_spec import load_all
from streamflow.runtime import flink_local
from streamflow.settings import Settings
from streamflow.stack import supervisor
from streamflow.stack.process import group_members

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOBS = ("transaction-processor", "fraud-detector", "realtime-aggregator")
EVENTS = int(os.environ.get("STREAMFLOW_FAULT_EVENTS", "12000"))
RATE = int(os.environ.get("STREAMFLOW_FAULT_RATE", "1000"))
MALFORMED_RATE = 0.01
FAULT_AFTER_S = 4.0
CATCH_UP_TIMEOUT_S = float(os.environ.get("STREAMFLOW_FAULT_CATCH_UP_S", "420"))
#: generator malformed kind -> the reason the transaction processor must give for it
EXPECTED_REASON = {"bad_json": "bad_json", "missing_field": "missing_field", "wrong_type": "wrong_type",
                   "negative_amount": "out_of_range"}
FIGURES_FILE = "reliability.json"


@dataclass
class Outcome:
    fault: str
    events: int = 0
    valid: int = 0
    malformed: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_source: int = 0
    kafka_extra: int = 0
    dlq_missing: int = 0
    dlq_duplicated: int = 0
    dlq_wrong_reason: int = 0
    alerts: int = 0
    alerts_without_bronze: int = 0
    recovery_s: float | None = None
    downtime_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def jobs(stack: Settings) -> Iterator[Settings]:
    """The three job clusters (reused when already running, e.g. after the e2e test)."""
    specs = load_all()
    already = {name for name in JOBS if flink_local.job_state(specs[name], stack) == "RUNNING"}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda name: flink_local.deploy(specs[name], stack), JOBS))
        yield stack
    finally:
        for name in JOBS:
            if name not in already:
                flink_local.stop(specs[name], stack)


@pytest.fixture(scope="module")
def figures(output_dir: Path) -> Iterator[list[Outcome]]:
    collected: list[Outcome] = []
    yield collected
    rows = [{k: v for k, v in vars(o).items()} for o in collected]
    (output_dir / FIGURES_FILE).write_text(json.dumps(rows, indent=2) + "\n")


@pytest.fixture
def heal(stack: Settings) -> Iterator[None]:
    """Whatever a fault took down (Airflow on a restarted PostgreSQL, a job cluster) is back afterwards,
    and every job has caught up with the topic, so the next test does not start while one is still in
    a restart back-off (up to a minute after a PostgreSQL restart) or replaying from its checkpoint."""
    running = [s.name for s in supervisor.status(stack) if s.running]
    yield
    supervisor.up(stack, running)
    specs = load_all()
    for name in JOBS:
        flink_local.deploy(specs[name], stack)
    # best effort (a teardown): a job still behind after 4 minutes shows up in the next test instead
    consumer_lag.wait_until_caught_up(stack, [specs[name].kafka_group_id for name in JOBS], timeout_s=240)


# ---- measuring -------------------------------------------------------------------------------------
def _bronze_count(dsn: str, prefix: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM bronze.raw_transactions WHERE transaction_id LIKE %s",
                               (prefix + "%",)).fetchone()
        return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1  # PostgreSQL is down (the fault under test)


def _alert_count(dsn: str, prefix: str) -> int:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.raw_fraud_alerts WHERE transaction_id LIKE %s",
                           (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


class Probe(threading.Thread):
    """Samples the run's bronze row count twice a second, to time when processing resumes."""

    def __init__(self, dsn: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.prefix = dsn, prefix
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.monotonic(), _bronze_count(self.dsn, self.prefix)))
            self._halt.wait(0.5)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def resumed_after(self, back_at: float, back_count: int) -> float | None:
        """The first time after ``back_at`` at which the count exceeds ``back_count`` (the count read
        right when the failed part was back)."""
        return next((t for t, c in self.samples if t > back_at and c > back_count), None)


def _dlq_records(settings: Settings, wanted: set[tuple[int, int]]) -> Counter[tuple[int, int, str]]:
    """(source partition, source offset, reason) of every committed DLQ record pointing at ``wanted``."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"fault-dlq-{time.time_ns()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    found: Counter[tuple[int, int, str]] = Counter()
    try:
        topic = settings.topic_dlq
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        # The DLQ sink is transactional (exactly-once): records become visible when the checkpoint that
        # covers them completes, so keep reading until every wanted source is seen (or time is up).
        deadline = time.monotonic() + 120
        seen: set[tuple[int, int]] = set()
        idle = 0  # once all are seen, read on until 3 s pass without records (duplicates would follow)
        while time.monotonic() < deadline and idle < 3:
            message = consumer.poll(1.0)
            if message is None or message.error():
                idle += 1 if wanted <= seen else 0
                continue
            idle = 0
            record = json.loads(message.value() or b"{}")
            if record.get("source_topic") != settings.topic_transactions:
                continue
            source = (int(record["source_partition"]), int(record["source_offset"]))
            if source in wanted:
                seen.add(source)
                found[(*source, str(record["reason"]))] += 1
    finally:
        consumer.close()
    return found


# ---- running a case ----------------------------------------------------------------------------
def _start_generator(settings: Settings, seed: int, ledger: Path, log_file: Path) -> subprocess.Popen[bytes]:
    argv = [str(settings.venv_python("generator")), "-m", "generator",
            "--bootstrap-servers", settings.kafka_bootstrap, "--topic", settings.topic_transactions,
            "--total-events", str(EVENTS), "--events-per-second", str(RATE), "--seed", str(seed),
            "--malformed-rate", str(MALFORMED_RATE), "--ledger", str(ledger), "--backfill",
            # the broker may be down at the end of the stream: wait as long as message.timeout.ms
            "--flush-timeout-seconds", "120"]
    with open(log_file, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=settings.repo_root)


def run_case(settings: Settings, output_dir: Path, fault: str,
             inject: Callable[[], float] | None) -> Outcome:
    """Stream with a ledger, call ``inject`` (returns when the failed part is back) and reconcile."""
    seed = random.randrange(10**8, 10**9)
    prefix = f"t-{seed}-"
    ledger_path = output_dir / f"fault-{fault}-ledger.jsonl"
    outcome = Outcome(fault)
    offsets_before = consumer_lag.end_offsets(settings)
    probe = Probe(settings.warehouse_dsn, prefix)
    probe.start()
    generator = _start_generator(settings, seed, ledger_path, output_dir / f"fault-{fault}-generator.log")
    try:
        if inject is not None:
            time.sleep(FAULT_AFTER_S)
            fault_at = time.monotonic()
            back_at = inject()
            back_count = _bronze_count(settings.warehouse_dsn, prefix)  # nothing is written until recovery
            outcome.downtime_s = round(back_at - fault_at, 1)
        assert generator.wait(timeout=600) == 0, f"generator failed: see {output_dir}/fault-{fault}-generator.log"
        rows = [json.loads(line) for line in ledger_path.read_text().splitlines() if line.strip()]
        delivered = [r for r in rows if r["delivered"]]
        valid = {r["transaction_id"]: (r["partition"], r["offset"]) for r in delivered if r["valid"]}
        malformed = {(r["partition"], r["offset"]): str(r["malformed_kind"]) for r in delivered if not r["valid"]}
        outcome.events, outcome.valid, outcome.malformed = len(rows), len(valid), len(malformed)
        assert len(delivered) == len(rows) == EVENTS, "the generator could not deliver every event"

        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while time.monotonic() < deadline and _bronze_count(settings.warehouse_dsn, prefix) < len(valid):
            time.sleep(2)
        # the fraud detector is its own job (it may still be in a restart back-off after the fault)
        while time.monotonic() < deadline + 180 and _alert_count(settings.warehouse_dsn, prefix) == 0:
            time.sleep(2)
        if inject is not None:
            resumed = probe.resumed_after(back_at, back_count)
            outcome.recovery_s = None if resumed is None else round(resumed - fault_at, 1)
    finally:
        probe.stop()
        if generator.poll() is None:
            generator.kill()

    with psycopg.connect(settings.warehouse_dsn) as conn:
        bronze = conn.execute(
            "SELECT transaction_id, kafka_partition, kafka_offset FROM bronze.raw_transactions "
            "WHERE transaction_id LIKE %s", (prefix + "%",)).fetchall()
        alerts = conn.execute(
            "SELECT a.alert_id, a.transaction_id, t.transaction_id IS NOT NULL FROM bronze.raw_fraud_alerts a "
            "LEFT JOIN bronze.raw_transactions t USING (transaction_id) WHERE a.transaction_id LIKE %s",
            (prefix + "%",)).fetchall()
    landed = Counter(r[0] for r in bronze)
    outcome.lost = len(set(valid) - set(landed))
    outcome.duplicated = sum(n - 1 for n in landed.values()) + len(set(landed) - set(valid))
    outcome.wrong_source = sum(1 for tid, part, off in bronze if tid in valid and valid[tid] != (part, off))
    offsets_after = consumer_lag.end_offsets(settings)
    outcome.kafka_extra = sum(offsets_after.values()) - sum(offsets_before.values()) - len(delivered)

    dlq = _dlq_records(settings, set(malformed))
    per_source = Counter((p, o) for (p, o, _r), n in dlq.items() for _ in range(n))
    outcome.dlq_missing = len(set(malformed) - set(per_source))
    outcome.dlq_duplicated = sum(n - 1 for n in per_source.values() if n > 1)
    outcome.dlq_wrong_reason = sum(1 for (p, o, reason) in dlq if EXPECTED_REASON[malformed[(p, o)]] != reason)
    outcome.alerts = len(alerts)
    outcome.alerts_without_bronze = sum(1 for _a, _t, in_bronze in alerts if not in_bronze)
    outcome.details = {"seed": seed, "malformed_kinds": dict(Counter(malformed.values())),
                       "rate_events_per_s": RATE}
    return outcome


def check(outcome: Outcome) -> None:
    assert outcome.malformed > 0 and outcome.valid > 0
    assert (outcome.lost, outcome.duplicated, outcome.wrong_source, outcome.kafka_extra) == (0, 0, 0, 0), outcome
    assert (outcome.dlq_missing, outcome.dlq_duplicated, outcome.dlq_wrong_reason) == (0, 0, 0), outcome
    assert outcome.alerts > 0 and outcome.alerts_without_bronze == 0, outcome
    # every kind the generator can make was exercised
    assert set(outcome.details["malformed_kinds"]) == set(EXPECTED_REASON), outcome.details


# ---- the cases ---------------------------------------------------------------------------------
def test_bad_input_without_faults(jobs: Settings, output_dir: Path, figures: list[Outcome]) -> None:
    """The baseline: 1 % malformed events of every kind, no fault."""
    outcome = run_case(jobs, output_dir, "none (1% malformed input)", None)
    figures.append(outcome)
    check(outcome)


def test_taskmanager_killed(jobs: Settings, output_dir: Path, figures: list[Outcome], heal: None) -> None:
    """SIGKILL the transaction processor's TaskManager; the runtime starts a new one and the job
    restarts from its last completed checkpoint (what `streamflow up` / bootstrap's deploy does)."""
    spec = load_all()["transaction-processor"]
    paths = flink_local.layout(spec, jobs)

    def inject() -> float:
        pid = paths.taskmanager_pid.alive_pid()
        assert pid is not None, "the TaskManager is not running"
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while group_members(pid) and time.monotonic() < deadline:  # SIGKILL is asynchronous
            time.sleep(0.05)
        assert paths.taskmanager_pid.alive_pid() is None, "the TaskManager survived SIGKILL"
        flink_local.deploy(spec, jobs)  # starts a new TaskManager; the JobManager restores the job on it
        return time.monotonic()

    outcome = run_case(jobs, output_dir, "flink taskmanager SIGKILL", inject)
    figures.append(outcome)
    check(outcome)


def test_kafka_restarted(jobs: Settings, output_dir: Path, figures: list[Outcome], heal: None) -> None:
    def inject() -> float:
        supervisor.down(jobs, ["kafka"])
        supervisor.up(jobs, ["kafka"])
        return time.monotonic()

    outcome = run_case(jobs, output_dir, "kafka broker restart", inject)
    figures.append(outcome)
    check(outcome)


def test_postgres_restarted(jobs: Settings, output_dir: Path, figures: list[Outcome], heal: None) -> None:
    def inject() -> float:
        supervisor.down(jobs, ["postgres"])
        supervisor.up(jobs, ["postgres"])
        return time.monotonic()

    outcome = run_case(jobs, output_dir, "postgresql restart", inject)
    figures.append(outcome)
    check(outcome)
