"""A test session never touches the stack a person started: proven with real servers.

The incident this guards against: after `make down`, `make test` in the same checkout replayed a
poison message left in the person's Kafka topic, and wrote their earlier traffic into the bronze table
the dbt tests had just truncated. Here a person's stack (PostgreSQL + Kafka, own state dir and ports)
holds a marker row and a marker message; a test session is then derived from that person's
environment exactly as tests/conftest.py derives it, claims its test stack, starts its own servers and
does what destructive tests do (truncate bronze, drop tables, produce a poison message). The person's
row and message are still there, and the poison never reached their topic.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamflow.settings import Settings, load_settings
from streamflow.stack import supervisor
from streamflow.topics import ensure_topics
from streamflow.warehouse import apply_migrations
from tests.stack_isolation import PORT_SETTINGS, claim, pick_ports, session_environment

pytestmark = pytest.mark.integration


def _settings_from_env(env: dict[str, str]) -> Settings:
    fields = {"STREAMFLOW_STATE_DIR": "state_dir", "STREAMFLOW_INSTALL_DIR": "install_dir", **PORT_SETTINGS}
    return load_settings(**{field: env[name] for name, field in fields.items()})


@pytest.fixture()
def person(settings: Settings) -> Iterator[Settings]:
    """A person's stack, as `make up` would run it in their own state dir (here: free ports)."""
    # Under the session's base state dir, not /tmp (0700): the postgres OS user must reach its data dir.
    state = settings.state_dir.parent / f"person-{uuid.uuid4().hex[:8]}"
    (singles, flink_base) = pick_ports(4)
    theirs = load_settings(state_dir=state, install_dir=settings.install_dir, postgres_port=singles[0],
                           kafka_port=singles[1], kafka_controller_port=singles[2], airflow_port=singles[3],
                           flink_rest_port_base=flink_base)
    try:
        supervisor.up(theirs, ["postgres", "kafka"])
        yield theirs
    finally:
        supervisor.down(theirs)
        shutil.rmtree(state, ignore_errors=True)


def _messages(s: Settings, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=30)[1] for p in parts}
        consumer.assign(parts)
        out: list[bytes] = []
        remaining = sum(ends.values())
        while remaining > 0:
            msg = consumer.poll(10)
            assert msg is not None, f"timed out reading {topic} at {s.kafka_bootstrap}"
            if msg.error():
                continue
            out.append(msg.value() or b"")
            remaining -= 1
        return out
    finally:
        consumer.close()


def _produce(s: Settings, topic: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    producer.produce(topic, value)
    assert producer.flush(30) == 0


def test_a_test_session_leaves_the_persons_stack_untouched(person: Settings) -> None:
    apply_migrations(person)
    ensure_topics(person)
    with psycopg.connect(person.warehouse_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.person_marker (note text)")
        conn.execute("INSERT INTO public.person_marker VALUES ('my data')")
        bronze_before = conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone()
    _produce(person, person.topic_transactions, b"my traffic")

    # The session a person would start in that shell: the state dir, installation and ports of their stack.
    shell = {"STREAMFLOW_STATE_DIR": str(person.state_dir), "STREAMFLOW_INSTALL_DIR": str(person.install_dir),
             "STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS": person.kafka_bootstrap,
             **{name: str(getattr(person, field)) for name, field in PORT_SETTINGS.items()}}
    env, dropped = session_environment(shell)
    session = _settings_from_env(env)
    assert session.state_dir == person.state_dir / "test-stack"
    assert "STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS" in dropped and session.kafka_bootstrap != person.kafka_bootstrap
    assert session.warehouse_dsn != person.warehouse_dsn

    with claim(session, environ=env):
        try:
            supervisor.up(session, ["postgres", "kafka"])
            apply_migrations(session)
            ensure_topics(session)
            # What destructive tests do to *their* stack.
            with psycopg.connect(session.warehouse_dsn, autocommit=True) as conn:
                conn.execute("TRUNCATE bronze.raw_transactions, bronze.raw_fraud_alerts")
                conn.execute("DROP TABLE IF EXISTS public.person_marker")
            _produce(session, session.topic_transactions, b"poison")
            assert _messages(session, session.topic_transactions) == [b"poison"]   # a fresh topic: no replay
        finally:
            supervisor.down(session)

    with psycopg.connect(person.warehouse_dsn) as conn:
        assert conn.execute("SELECT note FROM public.person_marker").fetchall() == [("my data",)]
        assert conn.execute("SELECT count(*) FROM bronze.raw_transactions").fetchone() == bronze_before
    assert _messages(person, person.topic_transactions) == [b"my traffic"]
    assert supervisor.status(person)[0].ready   # their PostgreSQL still runs
