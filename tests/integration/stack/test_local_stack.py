"""The local stack's services answer for real: Postgres, Kafka, Airflow's REST API; `down` is clean."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamflow.airflow_client import AirflowClient
from streamflow.settings import Settings

pytestmark = pytest.mark.integration


def test_postgres_accepts_connections_and_schemas_exist(stack: Settings) -> None:
    with psycopg.connect(stack.warehouse_dsn) as conn:
        schemas = {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")}
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'bronze'")}
    assert {"bronze", "silver", "gold"} <= schemas
    assert {"raw_transactions", "raw_fraud_alerts", "realtime_metrics"} <= tables
    with psycopg.connect(stack.airflow_db_dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (stack.airflow_db,)


def test_postgres_runs_as_non_root(stack: Settings) -> None:
    pid = int((stack.run_dir / "postgres.pid").read_text().split('"pid": ')[1].split(",")[0])
    uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
    assert uid != 0


def test_kafka_round_trip(stack: Settings) -> None:
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True})
    for i in range(10):
        producer.produce(topic, key=b"k", value=f"message-{i}".encode())
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    for _ in range(100):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got.append(message.value())
        if len(got) == 10:
            break
    consumer.close()
    assert got == [f"message-{i}".encode() for i in range(10)]


def test_pipeline_topics_exist(stack: Settings) -> None:
    metadata = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10)
    for topic in stack.topics:
        assert topic in metadata.topics
        assert len(metadata.topics[topic].partitions) == stack.topic_partitions


def test_airflow_api_with_token_lists_dags(airflow_stack: Settings) -> None:
    client = AirflowClient.from_settings(airflow_stack)
    assert len(client.token()) > 20
    body = client.get("/api/v2/dags?limit=100")
    assert "total_entries" in body
    health = client.get("/api/v2/monitor/health")
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"


def test_airflow_api_refuses_anonymous(airflow_stack: Settings) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{airflow_stack.airflow_url}/api/v2/dags", timeout=10)  # noqa: S310
    assert info.value.code == 401


def _last_parsed(settings: Settings) -> dict[str, object]:
    with psycopg.connect(settings.dsn(settings.airflow_db), connect_timeout=10) as conn:
        rows = conn.execute("SELECT dag_id, last_parsed_time FROM dag WHERE last_parsed_time IS NOT NULL").fetchall()
    return dict(rows)


def test_an_edited_dag_file_is_parsed_again_at_once(airflow_stack: Settings) -> None:
    """Unchanged DAG files are re-parsed only every 10 min (their ~6 s of CPU every 30 s was a fifth of a
    core): an edited one, or one `streamflow prepare` touched after a manifest change, must not wait."""
    import time

    from streamflow.dbt_runner import touch_dag_files
    from streamflow.stack.airflow import DAG_REPARSE_INTERVAL_S

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not {"dbt_quality", "bootstrap_pipeline"} <= set(_last_parsed(airflow_stack)):
        time.sleep(2)   # the processor's first pass after its start
    before = _last_parsed(airflow_stack)
    assert {"dbt_quality", "bootstrap_pipeline"} <= set(before), before
    time.sleep(1.1)     # an mtime after the last parse, at the file system's resolution
    touched = touch_dag_files(airflow_stack)
    assert {f.name for f in touched} >= {"dbt_quality.py", "bootstrap_pipeline.py"}
    deadline = time.monotonic() + 90
    after = before
    while time.monotonic() < deadline and not all(after[d] > before[d] for d in ("dbt_quality", "bootstrap_pipeline")):
        time.sleep(2)
        after = _last_parsed(airflow_stack)
    assert all(after[d] > before[d] for d in ("dbt_quality", "bootstrap_pipeline")), (before, after)
    assert DAG_REPARSE_INTERVAL_S > 90   # so the re-parse above came from the edit, not from the interval


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_up_down_leaves_no_process(settings: Settings) -> None:
    """An isolated second stack (own state dir and ports) through the real CLI: up, status, down."""
    # Under the state dir, not /tmp/pytest-of-root (0700): the postgres OS user must reach its data dir.
    state = settings.state_dir / "test-stacks" / uuid.uuid4().hex[:8]
    state.mkdir(parents=True)
    (state / "venvs").symlink_to(settings.venvs_dir)
    (state / "jars").symlink_to(settings.jars_dir)
    env = {**os.environ, "STREAMFLOW_STATE_DIR": str(state),
           "STREAMFLOW_POSTGRES_PORT": str(_free_port()), "STREAMFLOW_KAFKA_PORT": str(_free_port()),
           "STREAMFLOW_KAFKA_CONTROLLER_PORT": str(_free_port()), "STREAMFLOW_AIRFLOW_PORT": str(_free_port())}
    cli = [sys.executable, "-m", "streamflow"]
    up = subprocess.run([*cli, "up", "--only", "postgres,kafka"], env=env, capture_output=True, text=True,
                        timeout=300)
    assert up.returncode == 0, up.stderr
    pids = [int(p.read_text().split('"pid": ')[1].split(",")[0]) for p in (state / "run").glob("*.pid")]
    assert len(pids) == 2
    status = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert "postgres" in status.stdout and "healthy" in status.stdout
    down = subprocess.run([*cli, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "postgres" in down.stdout and "kafka" in down.stdout
    from streamflow.stack.process import group_members

    for pid in pids:
        assert group_members(pid) == [], f"process group {pid} still has members after down"
    assert not list((state / "run").glob("*.pid"))
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.parametrize("venv", ["airflow", "dbt", "flink", "generator"])
def test_every_stack_venv_carries_its_bytecode(settings: Settings, venv: str) -> None:
    """The set-up compiles each venv's bytecode (uv --compile-bytecode): with PYTHONDONTWRITEBYTECODE set,
    as on CI and this project's machines, every Airflow, dbt and PyFlink start compiled its imports
    again (Airflow's four processes: 21 s -> 14 s; warm `make up` ~100 s -> 54-71 s, ADR 0014)."""
    import sys

    tag = sys.implementation.cache_tag   # the venvs use the same Python 3.11 as the tests
    site = next((settings.venvs_dir / venv / "lib").glob("python3*/site-packages"))
    sources = [p for p in site.rglob("*.py") if "__pycache__" not in p.parts]
    missing = [p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists()]
    assert len(sources) > 100
    # a few files of some packages do not compile (Python 2 leftovers, templates named .py)
    assert len(missing) < 0.02 * len(sources), (len(missing), len(sources), [str(p) for p in missing[:5]])
