"""streamflow.kafka_access: the one place that builds Kafka clients and reads offsets.

Kafka is faked at the confluent_kafka boundary (kafka_fakes.py); tests/integration/portal/test_kafka_status.py
and the stack tests run the same hook against a real broker.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from kafka_fakes import Partition, install

from streamflow import kafka_access, topics
from streamflow.kafka_access import KafkaHook
from streamflow.ops import kafka as ops_kafka
from streamflow.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, install_dir=tmp_path, kafka_bootstrap_servers="kafka.test:9092")


def test_consumers_commit_nothing_and_take_overrides(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    broker = install(monkeypatch, {})
    KafkaHook(settings, timeout_s=4).consumer({"group.id": "g", "isolation.level": "read_committed"})
    conf = broker.consumers[-1].conf
    assert conf == {"bootstrap.servers": "kafka.test:9092", "group.id": "g", "enable.auto.commit": False,
                    "socket.timeout.ms": 4000, "isolation.level": "read_committed"}


def test_ensure_topics_creates_only_the_missing_ones(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    broker = install(monkeypatch, {settings.topic_transactions: {0: Partition(0, 5)}})
    broker.racing = {settings.topic_alerts}  # created by someone else meanwhile: "exists", not an error
    result = topics.ensure_topics(settings)
    assert result == {settings.topic_transactions: "exists", settings.topic_alerts: "exists",
                      settings.topic_metrics: "created", settings.topic_dlq: "created"}
    created = {t.topic: t for t in broker.created}
    assert set(created) == {settings.topic_alerts, settings.topic_metrics, settings.topic_dlq}
    for new in created.values():
        assert new.num_partitions == settings.topic_partitions
        assert new.config == {"retention.ms": str(settings.topic_retention_ms)}


def test_a_refused_topic_creation_raises(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    install(monkeypatch, {})
    with pytest.raises(KafkaException):
        KafkaHook(settings).create_topics(["ok.topic", "denied.topic"], partitions=1, retention_ms=60_000)


def test_watermarks_and_unknown_topics(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    install(monkeypatch, {"t": {1: Partition(2, 9), 0: Partition(0, 4)}})
    hook = KafkaHook(settings)
    assert hook.watermarks("t") == {0: (0, 4), 1: (2, 9)}
    assert hook.end_offsets("t") == {0: 4, 1: 9}
    with pytest.raises(LookupError, match="topic nope"):
        hook.end_offsets("nope")


def test_end_offsets_wait_for_a_new_topics_leader(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    broker = install(monkeypatch, {"t": {0: Partition(0, 3)}})
    broker.fail_metadata = [KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)),
                            KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE))]
    slept: list[float] = []
    monkeypatch.setattr(kafka_access.time, "sleep", slept.append)
    assert KafkaHook(settings).end_offsets_when_ready("t") == {0: 3}
    assert slept == [0.5, 1.0]


def test_end_offsets_do_not_retry_a_real_error(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    broker = install(monkeypatch, {"t": {0: Partition(0, 3)}})
    broker.fail_metadata = [KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))]
    monkeypatch.setattr(kafka_access.time, "sleep", lambda s: pytest.fail("retried a non-retriable error"))
    with pytest.raises(KafkaException):
        KafkaHook(settings).end_offsets_when_ready("t")


def test_end_offsets_give_up_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    broker = install(monkeypatch, {"t": {0: Partition(0, 3)}})
    broker.fail_metadata = [KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE)) for _ in range(3)]
    monkeypatch.setattr(kafka_access.time, "sleep", lambda s: None)
    with pytest.raises(KafkaException):
        KafkaHook(settings).end_offsets_when_ready("t", attempts=3)


def test_read_committed_range_reads_only_the_range(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    # Partition 0: records at 1..6, an aborted record at 7, its marker at 8. Partition 1: nothing new.
    records = {o: f"v{o}".encode() for o in range(1, 7)}
    broker = install(monkeypatch, {"t": {0: Partition(0, 9, records), 1: Partition(0, 2, {0: b"x", 1: b"y"})}})
    values, complete = KafkaHook(settings).read_committed_range("t", {0: 3, 1: 2}, {0: 9, 1: 2}, 5.0, group="g")
    assert values == {0: [b"v3", b"v4", b"v5", b"v6"], 1: []}
    assert complete is True
    assert broker.consumers[-1].conf["group.id"] == "g" and broker.consumers[-1].closed


def test_read_committed_range_reports_an_exhausted_budget(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(kafka_access, "Consumer", _Silent)
    values, complete = KafkaHook(settings).read_committed_range("t", {}, {0: 5}, budget_s=0.05)
    assert (values, complete) == ({0: []}, False)


class _Silent:
    """A consumer on a broker that never answers within the budget."""

    def __init__(self, conf: object) -> None:
        self.conf = conf

    def assign(self, partitions: object) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[object]:
        return []

    def close(self) -> None:
        pass


def test_reachable_is_a_plain_tcp_probe(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        listening = load_settings(state_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{port},other:1")
        assert KafkaHook(listening).reachable() is True
    closed = load_settings(state_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{port}")
    assert KafkaHook(closed).reachable(timeout_s=1) is False


def test_ops_tail_and_window_counts_read_through_the_hook(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    # Committed records at offsets 0, 1, 3 (2 is a marker); timestamps are 1000 + offset ms.
    install(monkeypatch, {"dlq": {0: Partition(0, 4, {0: b"a", 1: b"b", 3: b"{\"n\": 1}"})}})
    assert [m.offset for m in ops_kafka.last_messages(settings, "dlq", 3)] == [1, 3]  # the last 3 offsets
    window = ops_kafka.records_since(settings, "dlq", since=1.0011)
    assert (window.records, window.complete) == (2, True)
    assert ops_kafka.offsets_since(settings, "dlq", since=1.0011) == 3
    with pytest.raises(LookupError, match=r"topic nope: .*\(list them: streamflow kafka topics\)"):
        ops_kafka.last_messages(settings, "nope", 5)
