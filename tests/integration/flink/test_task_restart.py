"""A task that fails inside a running TaskManager restarts and recovers (issue 17, found in CI).

Thread-mode PyFlink loads libpython through pemja. With flink-python only in the job jar, a task
restarted in the same TaskManager could get a new class loader (when all of the job's tasks there
restart, as the detector's keyed graph does), and pemja's reload workaround failed on Java 17
(``NoSuchFieldException: loadedLibraryNames``): after the first failure of any cause the job
restarted forever while its TaskManager stayed up. The fix puts flink-python in the cluster's lib/
and loads pemja parent-first (spec: ``classloader.parent-first-patterns.additional``).

The failure here is infrastructure, not input: a job's sink table is renamed away while events that
it must write arrive, so the JDBC sink fails the tasks; then the table comes back. Passes when the
same job (same id, same TaskManager process) restarted, is RUNNING again and stops restarting, and
every row of this run reached its table.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka import Producer

from streamflow.flink_health import job_health
from streamflow.flink_spec import load_all
from streamflow.runtime import flink_local
from streamflow.settings import Settings
from tests.integration.flink.test_flink_jobs import crafted_set, flink_jobs, poll_until  # noqa: F401

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    job: str  # spec name
    inbox: str  # the table its JDBC sink writes (bronze table -> inbox, V012)
    table: str  # where this run's rows land
    fraud_only: bool  # the detector writes alerts: only the crafted fraud events make rows


CASES = [
    Case("transaction-processor", "raw_transactions_inbox", "bronze.raw_transactions", fraud_only=False),
    Case("fraud-detector", "raw_fraud_alerts_inbox", "bronze.raw_fraud_alerts", fraud_only=True),
]


def _restarts(settings: Settings, job: str) -> int:
    """The job's ``numRestarts`` metric, as the product's health check reads it."""
    health = job_health(job.replace("-", "_"), settings, stable_window_s=0)
    assert health.restarts is not None, health.reason
    return health.restarts


def _state(settings: Settings, job: str) -> str:
    return job_health(job.replace("-", "_"), settings, stable_window_s=0).state


def _exceptions(settings: Settings, job: str, job_id: str) -> str:
    url = f"{flink_local.rest_url(load_all()[job], settings)}/jobs/{job_id}/exceptions?maxExceptions=20"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return response.read().decode(errors="replace")


def _rows(dsn: str, table: str, run: str) -> int:
    """This run's rows (the table's key is transaction_id: a replay upserts, it cannot duplicate)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE transaction_id LIKE %s", (f"it-{run}-%",)).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("case", CASES, ids=[c.job for c in CASES])
def test_task_failure_in_a_live_taskmanager_recovers(flink_jobs: Settings, case: Case) -> None:  # noqa: F811
    settings = flink_jobs
    spec = load_all()[case.job]
    job_id = flink_local.current_job_id(spec, settings)
    assert job_id, f"{case.job} is not deployed"
    taskmanager = flink_local.layout(spec, settings).taskmanager_pid.alive_pid()
    restarts_before = _restarts(settings, case.job)
    crafted = crafted_set()
    expected = len([e for e in crafted.valid if e["fraud_pattern"] or not case.fraud_only])
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})

    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE bronze.{case.inbox} RENAME TO {case.inbox}_away")
    try:
        for event in crafted.valid:
            producer.produce(settings.topic_transactions, key=event["customer_id"], value=json.dumps(event).encode())
        assert producer.flush(30) == 0
        failed = poll_until(lambda: _restarts(settings, case.job) > restarts_before, timeout_s=240)
        assert failed, f"{case.job}'s sink never failed: the fault was not injected"
    finally:
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE bronze.{case.inbox}_away RENAME TO {case.inbox}")

    arrived = poll_until(lambda: _rows(settings.warehouse_dsn, case.table, crafted.run) >= expected,
                         timeout_s=420, interval_s=5)
    history = _exceptions(settings, case.job, job_id)
    assert "loadedLibraryNames" not in history, "a restarted task could not load Python again (pemja)"
    assert arrived, (f"{_rows(settings.warehouse_dsn, case.table, crafted.run)}/{expected} rows in {case.table} after "
                     f"the table came back; {case.job} is {_state(settings, case.job)}")
    assert _rows(settings.warehouse_dsn, case.table, crafted.run) == expected
    # recovered, and stays so: RUNNING and no further restart over a while
    settled = _restarts(settings, case.job)
    time.sleep(30)
    assert _state(settings, case.job) == "RUNNING"
    assert _restarts(settings, case.job) == settled, f"{case.job} keeps restarting"
    assert flink_local.current_job_id(spec, settings) == job_id, "the job was resubmitted, not restarted"
    assert flink_local.layout(spec, settings).taskmanager_pid.alive_pid() == taskmanager, \
        "the TaskManager was replaced: the restart did not happen in the same process"
