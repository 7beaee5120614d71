"""How far the Flink jobs' Kafka consumer groups are behind a topic's end.

The jobs commit their source offsets on checkpoints, so "a group has committed the end offsets" means
everything produced so far is processed *and* checkpointed. Benchmarks use it to start from a drained
topic, the fault tests to hand a healthy, caught-up pipeline to the next test. The Kafka reads
themselves are :class:`streamflow.kafka_access.KafkaHook`'s (the one module that talks to Kafka); the
portal's per-job lag is :meth:`~streamflow.kafka_status.KafkaStatusHook.group_lag`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from streamflow.kafka_access import KafkaHook
from streamflow.settings import Settings


def end_offsets(settings: Settings, topic: str | None = None) -> dict[int, int]:
    """Partition -> next offset to be written (the high watermark) of ``topic`` (transactions by default)."""
    return KafkaHook(settings).end_offsets(topic or settings.topic_transactions)


def committed_offsets(settings: Settings, group: str, partitions: Iterable[int],
                      topic: str | None = None) -> dict[int, int]:
    """Partition -> offset ``group`` has committed (negative when it has committed none)."""
    return KafkaHook(settings).committed_offsets(group, topic or settings.topic_transactions, list(partitions))


def next_position(committed: int, low: int) -> int:
    """Where a group reads a partition next: its committed offset, or the earliest retained record when it
    committed none (negative) or one that retention has deleted - the jobs reset to ``earliest``."""
    return max(committed, low)


def caught_up(committed: Mapping[int, int], watermarks: Mapping[int, tuple[int, int]],
              ends: Mapping[int, int]) -> bool:
    """Every partition's next read position is at or past its target end offset. A partition with nothing
    to read (empty, or emptied by retention) is caught up even when the group never committed on it: a
    job commits only the partitions it has read from, so "committed >= end" alone never turns true there."""
    return all(next_position(committed.get(p, -1), watermarks.get(p, (0, 0))[0]) >= end for p, end in ends.items())


def has_caught_up(settings: Settings, group: str, ends: dict[int, int], topic: str | None = None) -> bool:
    """``group`` has nothing left to read on ``topic`` up to ``ends`` (see :func:`caught_up`)."""
    name = topic or settings.topic_transactions
    hook = KafkaHook(settings)
    return caught_up(hook.committed_offsets(group, name, list(ends)), hook.watermarks(name), ends)


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
