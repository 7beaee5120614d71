"""Green means data flows (ADR 0010), on a real local Flink job, real Kafka and real PostgreSQL.

The order is the story of the issue that led here, and the tests depend on it (module-scoped state):

1. A run's events sit in ``transactions.raw`` while bronze already holds *old* rows (more of them than
   the run has events): ``wait_for_bronze`` must not go green, and must say what is missing.
2. ``transaction_processor`` is deployed with a wrong warehouse password (a settings override, the
   spec is untouched): its JDBC sink fails at start-up, the job loops RESTARTING/RUNNING. The deploy
   fails clearly, and the "running" sensor callable raises naming PostgreSQL's error instead of
   catching a RUNNING moment.
3. The deploy task with the right settings cancels and resubmits the looping job; the sensor then
   passes only once the job is stable and has checkpointed.
4. The very range of step 1 is then processed: the same ``wait_for_bronze`` check turns green.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from streamflow import pipeline
from streamflow.flink_spec import spec_for
from streamflow.runtime import flink_local_config, flink_local_lifecycle
from streamflow.runtime.health import job_health
from streamflow.runtime.local import deploy_flink_job, flink_job_running
from streamflow.settings import Settings, get_settings, load_settings

pytestmark = pytest.mark.integration

JOB = "transaction_processor"
VALID, MALFORMED = 40, 3


class TaskInstance:
    """The two things the callables read from Airflow's task instance: XComs and the start time."""

    def __init__(self, xcoms: dict[str, Any], started: datetime) -> None:
        self.xcoms = xcoms
        self.start_date = started

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


@pytest.fixture(scope="module")
def job_stack(stack: Settings) -> Iterator[Settings]:
    get_settings.cache_clear()  # the callables read the session's settings, like a task would
    assert get_settings().flink_rest_port_base == stack.flink_rest_port_base
    yield stack
    flink_local_lifecycle.stop(spec_for(JOB), stack, reset_state=True)


def _event(run: str, i: int) -> dict[str, Any]:
    return {"schema_version": 1, "transaction_id": f"jh-{run}-{i}", "customer_id": f"{run}-c{i % 5}",
            "card_id": f"card-{i % 5}", "store_id": f"{run}-store", "store_category": "grocery",
            "amount": 10.0 + i, "currency": "EUR", "channel": "pos",
            "event_time": (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "lat": 48.137, "lon": 11.575, "is_fraud_truth": False, "fraud_pattern": None}


@pytest.fixture(scope="module")
def this_run(job_stack: Settings) -> Iterator[dict[str, Any]]:
    """A run: offsets noted before and after producing VALID + MALFORMED events; old rows in bronze.

    The old rows are more than the run's events, and on the fresh topic many even carry a partition and
    offset inside the run's range (as after a topic was re-created): only their ingestion time, a day
    before the run, tells them apart.
    """
    run = uuid.uuid4().hex[:8]
    with psycopg.connect(job_stack.warehouse_dsn) as conn:
        conn.execute(
            "INSERT INTO bronze.raw_transactions (transaction_id, payload, kafka_topic, kafka_partition, "
            "kafka_offset, ingested_at) SELECT 'old-' || %s || '-' || g, '{}'::jsonb, %s, g %% 3, g, "
            "now() - interval '1 day' FROM generate_series(1, 500) g", (run, job_stack.topic_transactions))
    before = pipeline.transactions_offsets_before()
    producer = Producer({"bootstrap.servers": job_stack.kafka_bootstrap, "enable.idempotence": True})
    for i in range(VALID):
        producer.produce(job_stack.topic_transactions, key=f"{run}-{i % 5}", value=json.dumps(_event(run, i)))
    for i in range(MALFORMED):
        producer.produce(job_stack.topic_transactions, key=f"{run}-bad", value=b'{"transaction_id":"jh-' +
                         run.encode() + b'-bad-%d", cut' % i)
    assert producer.flush(30) == 0
    after = pipeline.transactions_offsets_after(TaskInstance({"transactions_offsets_before": before},
                                                             datetime.now(UTC)))
    yield {"run": run, "before": before, "after": after}
    # the fake old rows claim real offsets of the suite's topic: later tests reconcile bronze by offset
    with psycopg.connect(job_stack.warehouse_dsn) as conn:
        conn.execute("DELETE FROM bronze.raw_transactions WHERE transaction_id LIKE %s", (f"old-{run}-%",))


def test_old_rows_are_not_this_runs_events(this_run: dict[str, Any], job_stack: Settings) -> None:
    rng = pipeline.RunRange.from_xcom(this_run["after"])
    assert rng.records == VALID + MALFORMED
    # What the old check saw: bronze holds more rows than this run has events.
    with psycopg.connect(job_stack.warehouse_dsn) as conn:
        total = conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone()
    assert total is not None and total[0] >= rng.records
    fresh = TaskInstance({"transactions_offsets_after": this_run["after"]}, datetime.now(UTC))
    assert pipeline.bronze_ready(fresh) is False
    late = TaskInstance({"transactions_offsets_after": this_run["after"]},
                        datetime.now(UTC) - timedelta(seconds=job_stack.bronze_wait_timeout_s + 1))
    with pytest.raises(pipeline.BronzeWaitError) as timed_out:
        pipeline.bronze_ready(late)
    message = str(timed_out.value)
    assert f"{VALID + MALFORMED} of this run's {VALID + MALFORMED} events" in message
    assert "transaction_processor" in message and "missing" in message


def test_a_restart_loop_fails_the_deploy_and_the_sensor_names_the_cause(this_run: dict[str, Any],
                                                                        job_stack: Settings) -> None:
    broken = load_settings(postgres_password="wrong-password")  # pragma: allowlist secret
    spec = spec_for(JOB)
    with pytest.raises(flink_local_config.FlinkJobError) as deploy_failed:
        flink_local_lifecycle.deploy(spec, broken)
    assert "password authentication failed" in str(deploy_failed.value)

    deadline = time.monotonic() + 180
    with pytest.raises(RuntimeError) as sensor_failed:
        while time.monotonic() < deadline:
            assert flink_job_running(JOB) is False, "the sensor went green on a job in a restart loop"
            time.sleep(3)
    message = str(sensor_failed.value)
    assert "restart loop" in message, message
    assert "password authentication failed" in message, message
    assert "taskmanager.log" in message


def test_the_deploy_task_redeploys_a_looping_job_and_the_sensor_waits_for_health(job_stack: Settings) -> None:
    looping = job_health(JOB, job_stack)
    assert looping.restarts and not looping.healthy
    pushed = deploy_flink_job(JOB)  # the right settings: cancels and resubmits (the shared cluster keeps running)
    assert pushed["job_id"] != looping.job_id and pushed["restarts"] in (0, None)  # None: metrics not fetched yet

    class TI:
        def xcom_pull(self, task_ids: str) -> Any:
            return pushed

    began = time.monotonic()
    polls = []
    while time.monotonic() - began < 240:
        polls.append(flink_job_running(JOB, ti=TI()))
        if polls[-1]:
            break
        time.sleep(3)
    assert polls[-1] is True, job_health(JOB, job_stack).reason
    health = job_health(JOB, job_stack)
    assert health.healthy and health.restarts == 0
    assert health.running_since is not None and health.last_checkpoint_at is not None
    assert health.last_checkpoint_at >= health.running_since
    assert time.time() - health.running_since >= health.stable_window_s
    assert polls[0] is False  # right after the deploy it had not proven anything yet


def test_the_same_range_turns_green_once_processed(this_run: dict[str, Any], job_stack: Settings) -> None:
    ti = TaskInstance({"transactions_offsets_after": this_run["after"]}, datetime.now(UTC))
    deadline = time.monotonic() + 180
    while not pipeline.bronze_ready(ti):
        assert time.monotonic() < deadline, pipeline.account_run(job_stack, pipeline.RunRange.from_xcom(
            this_run["after"])).missing_text()
        time.sleep(3)
    account = pipeline.account_run(job_stack, pipeline.RunRange.from_xcom(this_run["after"]))
    assert sum(account.bronze.values()) == VALID and sum(account.dlq.values()) == MALFORMED
