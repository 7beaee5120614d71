"""The portal's Kafka figures against a real broker: the DLQ count (on the portal and in
bootstrap_pipeline's summary) is the records a read_committed consumer receives (aborted transactions
and open ones are not counted), and consumer lag is the committed end minus the group's committed offsets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamflow import portal_status
from streamflow.kafka_status import KafkaStatusHook
from streamflow.settings import Settings, load_settings
from tests.scratch_topics import scratch_topic

pytestmark = pytest.mark.integration
PARTITIONS = 3


@pytest.fixture
def topic(stack: Settings) -> Iterator[str]:
    with scratch_topic(stack, "test-dlq", PARTITIONS) as name:
        yield name


def transactional_producer(settings: Settings, topic: str) -> Producer:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(30)
    return producer


def produce(producer: Producer, topic: str, count: int, tag: str) -> None:
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS)
    producer.flush(30)


def test_dlq_count_ignores_aborted_and_open_transactions(stack: Settings, topic: str) -> None:
    producer = transactional_producer(stack, topic)
    producer.begin_transaction()
    produce(producer, topic, 234, "aborted")  # a failing Flink job's transactional sink, aborted
    producer.abort_transaction(30)
    producer.begin_transaction()
    produce(producer, topic, 17, "committed")
    producer.commit_transaction(30)
    producer.begin_transaction()
    produce(producer, topic, 5, "in-flight")  # the next checkpoint's transaction, not committed yet

    hook = KafkaStatusHook(stack)
    count = hook.count_committed_records(topic, budget_s=30)
    assert count.complete
    assert count.records == 17
    assert count.offsets >= 234 + 17  # what the page used to show: offsets, aborted records included

    producer.commit_transaction(30)
    producer.begin_transaction()
    produce(producer, topic, 40, "aborted-again")
    producer.abort_transaction(30)
    again = hook.count_committed_records(topic, budget_s=30)  # resumes where the first count stopped
    assert (again.records, again.complete) == (17 + 5, True)
    fresh = KafkaStatusHook(stack)
    fresh._progress.clear()  # and counting from scratch agrees
    assert fresh.count_committed_records(topic, budget_s=30).records == 17 + 5


def aborted_then_committed(stack: Settings, topic: str, aborted: int, committed: int) -> None:
    """One aborted transaction of ``aborted`` records, then one committed of ``committed``."""
    producer = transactional_producer(stack, topic)
    producer.begin_transaction()
    produce(producer, topic, aborted, "aborted")
    producer.abort_transaction(30)
    producer.begin_transaction()
    produce(producer, topic, committed, "committed")
    producer.commit_transaction(30)


def test_portal_dlq_figure_is_the_committed_count(stack: Settings, topic: str) -> None:
    aborted_then_committed(stack, topic, aborted=12, committed=3)
    settings = load_settings(**{**_overrides(stack), "topic_dlq": topic})
    figure = portal_status.dlq_records(settings, budget_s=30)
    assert (figure["records"], figure["complete"]) == (3, True)
    assert figure["offsets"] > 3



def test_bootstrap_summary_counts_committed_dlq_records(stack: Settings, topic: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """bootstrap_pipeline's summary task prints the same committed count, not the DLQ's offsets."""
    from streamflow import pipeline

    # Row counts are not this test's subject (they need a dbt manifest for the table list).
    monkeypatch.setattr(pipeline, "row_counts", lambda settings: {"bronze": {}, "silver": {}, "gold": {}})
    aborted_then_committed(stack, topic, aborted=25, committed=4)
    settings = load_settings(**{**_overrides(stack), "topic_dlq": topic})
    summary = pipeline.run_summary(settings)
    assert (summary["dlq_messages"], summary["dlq_complete"]) == (4, True)
    assert summary["dlq_offsets"] >= 25 + 4  # an offset-based count would have said this


def test_consumer_lag_of_a_group(stack: Settings, topic: str) -> None:
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    produce(producer, topic, 30, "event")  # 10 per partition
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    hook = KafkaStatusHook(stack)
    assert hook.group_lag(group, [topic]).lag is None  # committed nothing: unknown, not zero
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 10), TopicPartition(topic, 1, 4)], asynchronous=False)
    finally:
        consumer.close()
    lag = hook.group_lag(group, [topic, stack.topic_dlq])  # only the topics it consumed count
    assert lag.topics == (topic,)
    assert lag.partitions == {f"{topic}[0]": 0, f"{topic}[1]": 6, f"{topic}[2]": 10}
    assert lag.lag == 16


def _overrides(settings: Settings) -> dict[str, object]:
    """The stack's settings as keyword arguments (to change one field)."""
    return {name: getattr(settings, name) for name in type(settings).model_fields}
