"""How far the Flink jobs' Kafka consumer groups are behind a topic's end.

The jobs commit their source offsets on checkpoints, so "a group has committed the end offsets" means
everything produced so far is processed *and* checkpointed. Benchmarks use it to start from a drained
topic, the fault tests to hand a healthy, caught-up pipeline to the next test. The Kafka reads
themselves are :class:`streamflow.kafka_access.KafkaHook`'s (the one module that talks to Kafka); the
portal's per-job lag is :meth:`~streamflow.kafka_status.KafkaStatusHook.group_lag`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from streamflow.kafka_access import KafkaHook
from streamflow.settings import Settings


def end_offsets(settings: Settings, topic: str | None = None) -> dict[int, int]:
    """Partition -> next offset to be written (the high watermark) of ``topic`` (transactions by default)."""
    return KafkaHook(settings).end_offsets(topic or settings.topic_transactions)


def committed_offsets(settings: Settings, group: str, partitions: Iterable[int],
                      topic: str | None = None) -> dict[int, int]:
    """Partition -> offset ``group`` has committed (negative when it has committed none)."""
    return KafkaHook(settings).committed_offsets(group, topic or settings.topic_transactions, list(partitions))


def has_caught_up(settings: Settings, group: str, ends: dict[int, int], topic: str | None = None) -> bool:
    committed = committed_offsets(settings, group, ends, topic)
    return all(committed.get(p, -1) >= end for p, end in ends.items())


def wait_until_caught_up(settings: Settings, groups: Iterable[str], timeout_s: float,
                         topic: str | None = None) -> float:
    """Wait (at most ``timeout_s``) until every group has committed the topic's current end offsets;
    returns the seconds waited. Does not raise on timeout: callers report or ignore the lag."""
    groups = list(groups)
    began = time.monotonic()
    ends = end_offsets(settings, topic)
    while time.monotonic() - began < timeout_s:
        if all(has_caught_up(settings, g, ends, topic) for g in groups):
            break
        time.sleep(2.0)
    return time.monotonic() - began
