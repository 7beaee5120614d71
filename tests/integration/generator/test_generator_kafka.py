"""Against the real broker: N produced -> N consumed, keyed by customer, and the ledger matches Kafka."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from generator.cli import EXIT_OK, main
from generator.ledger import read_ledger

pytestmark = pytest.mark.integration

N = 20_000
PARTITIONS = 3


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"test.generator.{uuid.uuid4().hex[:12]}"
    for future in admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)
    yield name
    for future in admin.delete_topics([name], operation_timeout=30).values():
        future.result(timeout=30)


Record = tuple[int, int, bytes, bytes]


def _record(msg: Message) -> Record:
    assert msg.error() is None, msg.error()
    return (int(msg.partition() or 0), int(msg.offset() or 0), bytes(msg.key() or b""), bytes(msg.value() or b""))


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Record]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                records.append(_record(msg))
        # Anything beyond N would be a duplicate: read a little longer to be sure there is none.
        for msg in consumer.consume(num_messages=1000, timeout=2.0):
            records.append(_record(msg))
    finally:
        consumer.close()
    return records


def test_n_produced_n_consumed_and_the_ledger_matches(kafka_bootstrap: str, topic: str, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.jsonl"
    rc = main(["--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--total-events", str(N),
               "--events-per-second", "0", "--seed", "2026", "--fraud-rate", "0.05", "--malformed-rate", "0.01",
               "--ledger", str(ledger_path), "--start-time", "2026-11-22T07:00:00Z"], {})
    assert rc == EXIT_OK

    records = _consume_all(kafka_bootstrap, topic, N)
    assert len(records) == N, "lost or duplicated messages"
    ledger = read_ledger(ledger_path)
    assert len(ledger) == N and all(row["delivered"] for row in ledger)
    assert len({row["transaction_id"] for row in ledger}) == N

    by_position = {(row["partition"], row["offset"]): row for row in ledger}
    assert set(by_position) == {(p, o) for p, o, _, _ in records}, "ledger partitions/offsets differ from Kafka's"

    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for partition, offset, key, value in records:
        row = by_position[(partition, offset)]
        assert key == str(row["customer_id"]).encode()
        partitions_of[key].add(partition)
        if row["malformed_kind"] == "bad_json":
            continue
        event = json.loads(value)
        if "transaction_id" in event:
            assert event["transaction_id"] == row["transaction_id"]
        if row["valid"]:
            assert event["customer_id"] == row["customer_id"]
            assert event["fraud_pattern"] == row["fraud_pattern"]
    assert all(len(parts) == 1 for parts in partitions_of.values()), "a customer's events span partitions"
    assert len({p for p, _, _, _ in records}) == PARTITIONS

    kinds = Counter(row["malformed_kind"] for row in ledger if not row["valid"])
    assert set(kinds) == {"bad_json", "missing_field", "wrong_type", "negative_amount"}


def test_events_of_a_customer_arrive_in_event_time_order(kafka_bootstrap: str, topic: str) -> None:
    rc = main(["--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--total-events", "5000",
               "--events-per-second", "0", "--seed", "1", "--start-time", "2026-11-22T07:00:00Z"], {})
    assert rc == EXIT_OK
    last: dict[bytes, str] = {}
    records = sorted(_consume_all(kafka_bootstrap, topic, 5000), key=lambda r: (r[0], r[1]))
    assert len(records) == 5000
    for _, _, key, value in records:
        event_time = json.loads(value)["event_time"]
        assert event_time >= last.get(key, ""), "out of order within a customer"
        last[key] = event_time


def test_unreachable_broker_exits_non_zero(tmp_path: Path) -> None:
    rc = main(["--bootstrap-servers", "127.0.0.1:1", "--topic", "nowhere", "--total-events", "10",
               "--events-per-second", "0", "--flush-timeout-seconds", "2", "--ledger", str(tmp_path / "l.jsonl")], {})
    assert rc != EXIT_OK
    ledger = read_ledger(tmp_path / "l.jsonl")
    assert len(ledger) == 10 and not any(row["delivered"] for row in ledger)
