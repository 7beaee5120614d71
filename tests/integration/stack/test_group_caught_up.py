"""Caught up or not, against a real broker: an empty topic with a group that never committed has
nothing to read; a produced record is behind until the group commits its end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamflow import consumer_lag
from streamflow.kafka_access import KafkaHook
from streamflow.settings import Settings
from tests.scratch_topics import scratch_topic

pytestmark = pytest.mark.integration
PARTITIONS = 3


@pytest.fixture
def topic(stack: Settings) -> Iterator[str]:
    with scratch_topic(stack, "test-lag", PARTITIONS) as name:
        yield name


def test_a_group_is_caught_up_exactly_when_nothing_is_left_to_read(stack: Settings, topic: str) -> None:
    group = f"group-{topic}"
    deadline = time.monotonic() + 30
    while True:  # a new topic's metadata takes a moment to reach the broker's metadata cache
        try:
            ends = KafkaHook(stack).end_offsets_when_ready(topic)
            break
        except LookupError:
            assert time.monotonic() < deadline, f"topic {topic} still unknown after 30 s"
            time.sleep(0.5)
    assert ends == dict.fromkeys(range(PARTITIONS), 0)
    assert consumer_lag.has_caught_up(stack, group, ends, topic)  # empty topic, no commit: nothing to read
    assert consumer_lag.wait_until_caught_up(stack, [group], timeout_s=60, topic=topic) < 30

    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(topic, value=b"one", partition=1)
    assert producer.flush(30) == 0
    ends = consumer_lag.end_offsets(stack, topic)
    assert ends[1] == 1
    assert not consumer_lag.has_caught_up(stack, group, ends, topic)  # one record, never read

    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 1, 1)], asynchronous=False)
    finally:
        consumer.close()
    assert consumer_lag.has_caught_up(stack, group, ends, topic)  # committed the end of the only non-empty one
