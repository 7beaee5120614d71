"""bootstrap_pipeline's summary counts the DLQ's committed records, not its offsets (issue 17).

Kafka is faked at its boundary (``confluent_kafka.Consumer`` as streamflow.kafka_access builds it): a
transactional topic whose offsets include aborted records and commit markers, which a read_committed
consumer skips. tests/integration/portal/test_kafka_status.py runs the same summary against a real broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka_fakes import Message

from streamflow import kafka_access, kafka_status, pipeline
from streamflow.settings import Settings, load_settings


class FakeTransactionalTopic:
    """Per partition: the committed records' offsets and the high watermark. Every other offset below
    the high watermark is an aborted record or a transaction marker: it takes an offset, a
    read_committed consumer never receives it."""

    def __init__(self, topic: str, partitions: dict[int, tuple[list[int], int]]) -> None:
        self.topic = topic
        self.partitions = partitions

    def consumer(self, conf: dict[str, Any]) -> FakeConsumer:
        return FakeConsumer(self, conf)


class FakeConsumer:
    def __init__(self, topic: FakeTransactionalTopic, conf: dict[str, Any]) -> None:
        self.fake, self.conf = topic, conf
        self.assigned: list[Any] = []

    def list_topics(self, topic: str, timeout: float) -> Any:
        assert topic == self.fake.topic, topic
        meta = type("Meta", (), {"error": None, "partitions": dict.fromkeys(self.fake.partitions)})()
        return type("Cluster", (), {"topics": {topic: meta}})()

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        return 0, self.fake.partitions[tp.partition][1]

    def assign(self, partitions: list[Any]) -> None:
        # Only a read_committed consumer may be used to count: read_uncommitted would see aborted records.
        assert self.conf.get("isolation.level") == "read_committed", self.conf
        self.assigned = list(partitions)

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        out: list[Message] = []
        for tp in self.assigned:
            committed, high = self.fake.partitions[tp.partition]
            out += [Message(self.fake.topic, tp.partition, o, b"{}") for o in committed if o >= tp.offset]
            out.append(Message(self.fake.topic, tp.partition, high, eof=True))
        self.assigned = []
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, install_dir=tmp_path)


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook remembers per partition where it stopped; every test starts from nothing."""
    monkeypatch.setattr(kafka_status.KafkaStatusHook, "_progress", {})


def _fake_dlq(monkeypatch: pytest.MonkeyPatch, settings: Settings,
              partitions: dict[int, tuple[list[int], int]]) -> None:
    fake = FakeTransactionalTopic(settings.topic_dlq, partitions)
    monkeypatch.setattr(kafka_access, "Consumer", fake.consumer)
    monkeypatch.setattr(pipeline, "row_counts", lambda s: {
        "bronze": {"raw_transactions": 10, "raw_fraud_alerts": 2, "realtime_metrics": 1}, "silver": {}, "gold": {}})


def test_summary_counts_committed_dlq_records_not_offsets(monkeypatch: pytest.MonkeyPatch, settings: Settings,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Partition 0: 234 aborted records (offsets 0..233) + abort marker (234), then 2 committed records
    # (235, 236) + commit marker (237). Partition 1: 1 committed record + its marker.
    _fake_dlq(monkeypatch, settings, {0: ([235, 236], 238), 1: ([0], 2)})
    summary = pipeline.run_summary(settings)
    assert summary["dlq_messages"] == 3
    assert summary["dlq_complete"] is True
    assert summary["dlq_offsets"] == 240  # what the summary used to print as "dlq"
    assert summary["alerts"] == 2
    assert "dlq=3 committed records (topic spans 240 offsets)" in capsys.readouterr().out


def test_summary_of_a_dlq_with_only_aborted_transactions_is_zero(monkeypatch: pytest.MonkeyPatch,
                                                                 settings: Settings) -> None:
    _fake_dlq(monkeypatch, settings, {0: ([], 120), 1: ([], 115), 2: ([], 0)})
    summary = pipeline.run_summary(settings)
    assert (summary["dlq_messages"], summary["dlq_complete"], summary["dlq_offsets"]) == (0, True, 235)


def test_summarize_task_uses_the_dag_runs_start(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    _fake_dlq(monkeypatch, settings, {0: ([1], 3)})
    monkeypatch.setattr(pipeline, "get_settings", lambda: settings)
    dag_run = type("DagRun", (), {"start_date": datetime.now(UTC) - timedelta(seconds=90)})()
    summary = pipeline.summarize(dag_run=dag_run)
    assert summary["dlq_messages"] == 1 and summary["dlq_offsets"] == 3
    assert 89 <= summary["run_seconds"] < 120
