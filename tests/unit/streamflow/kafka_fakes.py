"""A fake Kafka broker at the confluent_kafka boundary (``Consumer`` and ``AdminClient`` as
streamflow.kafka_access builds them), for unit tests of the code that reads offsets and records.

Each partition is ``(low, high, records)``: ``records`` maps the offsets of committed records to their
value. Every other offset in [low, high) is an aborted record or a transaction marker: it takes an
offset, a read_committed consumer never receives it. Install with :func:`install`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamflow import kafka_access


@dataclass
class Partition:
    low: int
    high: int
    records: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Error:
    code_: int

    def code(self) -> int:
        return self.code_


@dataclass
class Message:
    topic_: str
    partition_: int
    offset_: int
    value_: bytes | None = None
    eof: bool = False

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def error(self) -> _Error | None:
        return _Error(KafkaError._PARTITION_EOF) if self.eof else None

    def value(self) -> bytes | None:
        return self.value_

    def key(self) -> bytes | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000 + self.offset_)


class FakeBroker:
    def __init__(self, topics: dict[str, dict[int, Partition]]) -> None:
        self.topics = topics
        self.consumers: list[FakeConsumer] = []
        self.created: list[Any] = []
        self.fail_metadata: list[KafkaException] = []  # raised by the next list_topics calls, in order
        self.racing: set[str] = set()  # topics another process creates between our listing and our create

    def consumer(self, conf: dict[str, Any]) -> FakeConsumer:
        consumer = FakeConsumer(self, dict(conf))
        self.consumers.append(consumer)
        return consumer

    def admin(self, conf: dict[str, Any]) -> FakeAdmin:
        return FakeAdmin(self, dict(conf))

    def metadata(self, topic: str | None = None) -> Any:
        if self.fail_metadata:
            raise self.fail_metadata.pop(0)
        names = [topic] if topic is not None else list(self.topics)
        topics = {}
        for name in names:
            parts = self.topics.get(name)
            error = None if parts is not None else "UNKNOWN_TOPIC_OR_PART"
            topics[name] = type("Meta", (), {"topic": name, "error": error, "partitions": dict.fromkeys(parts or {})})()
        return type("Cluster", (), {"topics": topics, "brokers": {1: "b"}})()


class FakeConsumer:
    def __init__(self, broker: FakeBroker, conf: dict[str, Any]) -> None:
        self.broker, self.conf = broker, conf
        self.assigned: list[Any] = []
        self.closed = False

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return self.broker.metadata(topic)

    def get_watermark_offsets(self, tp: Any, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        part = self.broker.topics[tp.topic][tp.partition]
        return part.low, part.high

    def offsets_for_times(self, partitions: list[Any], timeout: float = -1) -> list[Any]:
        # Timestamps are 1000 + offset (see Message.timestamp): the first committed offset at or after it.
        out = []
        for tp in partitions:
            part = self.broker.topics[tp.topic][tp.partition]
            first = min((o for o in part.records if 1_000 + o >= tp.offset), default=-1)
            out.append(type("TP", (), {"topic": tp.topic, "partition": tp.partition, "offset": first})())
        return out

    def assign(self, partitions: list[Any]) -> None:
        assert self.conf.get("isolation.level") == "read_committed", self.conf
        self.assigned = list(partitions)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        out: list[Message] = []
        for tp in self.assigned:
            part = self.broker.topics[tp.topic][tp.partition]
            out += [Message(tp.topic, tp.partition, o, v) for o, v in sorted(part.records.items()) if o >= tp.offset]
            out.append(Message(tp.topic, tp.partition, part.high, eof=True))
        self.assigned = []
        return out

    def close(self) -> None:
        self.closed = True


class _Future:
    def __init__(self, error: KafkaException | None) -> None:
        self.error = error

    def result(self) -> None:
        if self.error is not None:
            raise self.error


class FakeAdmin:
    def __init__(self, broker: FakeBroker, conf: dict[str, Any]) -> None:
        self.broker, self.conf = broker, conf

    def list_topics(self, timeout: float = -1) -> Any:
        return self.broker.metadata()

    def create_topics(self, new_topics: list[Any], operation_timeout: float = 0) -> dict[str, _Future]:
        futures = {}
        for new in new_topics:
            self.broker.created.append(new)
            if new.topic in self.broker.racing:
                futures[new.topic] = _Future(KafkaException(KafkaError(kafka_access.TOPIC_ALREADY_EXISTS)))
            elif new.topic.startswith("denied"):
                futures[new.topic] = _Future(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
            else:
                futures[new.topic] = _Future(None)
                self.broker.topics[new.topic] = {p: Partition(0, 0) for p in range(new.num_partitions)}
        return futures


def install(monkeypatch: pytest.MonkeyPatch, topics: dict[str, dict[int, Partition]]) -> FakeBroker:
    """Replace the Kafka clients streamflow.kafka_access builds with a fake broker holding ``topics``."""
    broker = FakeBroker(topics)
    monkeypatch.setattr(kafka_access, "Consumer", broker.consumer)
    monkeypatch.setattr(kafka_access, "AdminClient", broker.admin)
    return broker
