"""Read-only Kafka facts the platform shows people: committed records in a topic, consumer-group lag.

Built on :class:`streamflow.kafka_access.KafkaHook` (the one module that builds Kafka clients and
reads offsets), and it only reads (no produce, no offset commit, no group join). The portal, the
bootstrap summary and any status line ask it, so "how many messages" is computed one way everywhere.

Why counting is not ``high - low`` watermarks: the Flink sinks write with Kafka transactions
(``EXACTLY_ONCE``). A job that fails aborts its open transaction; the aborted records and every
transaction marker still take offsets, but no ``read_committed`` consumer ever receives them. A DLQ
figure taken from offsets therefore reports messages nobody can read (234 of them, in the issue that
led here). :meth:`KafkaStatusHook.count_committed_records` reads the topic with
``isolation.level=read_committed`` and counts the records it actually receives, within a time budget,
and remembers where it stopped per partition so the next call only reads what is new.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from confluent_kafka import KafkaError, TopicPartition

from streamflow.kafka_access import KafkaHook


@dataclass(frozen=True)
class RecordCount:
    """Committed records of a topic, as a ``read_committed`` consumer receives them."""

    topic: str
    records: int  # records received (aborted records and transaction markers are never received)
    complete: bool  # every partition was read up to its last stable offset within the budget
    offsets: int  # end - start offsets, for comparison: includes aborted records and markers
    seconds: float


@dataclass(frozen=True)
class GroupLag:
    """How far a consumer group's committed offsets are behind the committed end of its topics."""

    group: str
    lag: int | None  # records still to process; None when the group has committed nothing yet
    partitions: dict[str, int] = field(default_factory=dict)  # "topic[partition]" -> lag
    topics: tuple[str, ...] = ()


@dataclass
class _Progress:
    """Where the last count of one partition stopped (the next count resumes there)."""

    start: int  # the partition's low watermark when counting began
    position: int  # next offset to read
    records: int  # committed records in [start, position)


class KafkaStatusHook(KafkaHook):
    """Read-only facts on top of :class:`~streamflow.kafka_access.KafkaHook` (which builds the clients
    and reads the offsets): lag per consumer group, committed records per topic."""

    _progress: dict[tuple[str, str, int], _Progress] = {}  # noqa: RUF012 - process-wide on purpose
    _progress_lock = threading.Lock()

    # ---- lag ----------------------------------------------------------------------------------------
    def group_lag(self, group: str, topics: Iterable[str] | None = None) -> GroupLag:
        """Committed end (last stable offset) minus the group's committed offset, per partition of the
        ``topics`` (default: all) the group has committed offsets for.

        A Flink Kafka source commits its offsets when a checkpoint completes, so a job in a restart
        loop (no checkpoint) shows a lag that only grows."""
        committed = self.group_offsets(group, topics)
        if not committed:
            return GroupLag(group, None)
        consumed = sorted({topic for topic, _ in committed})
        per_partition: dict[str, int] = {}
        for topic in consumed:
            for partition, (low, end) in self.watermarks(topic, committed_only=True).items():
                # A partition the group never committed (or whose committed records retention deleted)
                # is read from its low watermark on: the same rule as consumer_lag.next_position.
                offset = max(committed.get((topic, partition), low), low)
                per_partition[f"{topic}[{partition}]"] = max(0, end - offset)
        return GroupLag(group, sum(per_partition.values()), per_partition, tuple(consumed))

    # ---- counting ---------------------------------------------------------------------------------
    def count_committed_records(self, topic: str, budget_s: float = 5.0) -> RecordCount:
        """Committed records of ``topic``, read with a ``read_committed`` consumer for at most ``budget_s``.

        Exact when ``complete``; otherwise a lower bound (the next call resumes where this one
        stopped). Progress is kept per partition and thrown away when the partition's low watermark
        moved (retention deleted records) or its end went backwards (the topic was re-created).
        """
        began = time.monotonic()
        marks = self.watermarks(topic, committed_only=True)
        offsets = sum(high - low for low, high in marks.values())
        with self._progress_lock:
            progress = {}
            for partition, (low, high) in marks.items():
                key = (self.bootstrap, topic, partition)
                known = self._progress.get(key)
                if known is None or known.start != low or known.position > high:
                    known = _Progress(start=low, position=low, records=0)
                progress[partition] = replace(known)  # a copy: concurrent counts never add twice
        pending = {p for p, (_, high) in marks.items() if progress[p].position < high}
        if pending:
            consumer = self.consumer({"isolation.level": "read_committed", "enable.partition.eof": True,
                                      "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100})
            try:
                consumer.assign([TopicPartition(topic, p, progress[p].position) for p in sorted(pending)])
                deadline = began + budget_s
                while pending and time.monotonic() < deadline:
                    for message in consumer.consume(num_messages=5000, timeout=0.2):
                        part, offset, error = message.partition(), message.offset(), message.error()
                        if part is None or offset is None:
                            if error is not None:
                                raise RuntimeError(f"reading {topic}: {error}")
                            continue
                        if error is None:
                            progress[part].records += 1
                            progress[part].position = offset + 1
                        elif error.code() == KafkaError._PARTITION_EOF:
                            # At EOF the position is the last stable offset (markers/aborted skipped).
                            progress[part].position = max(progress[part].position, offset)
                            pending.discard(part)
                        else:
                            raise RuntimeError(f"reading {topic}[{part}]: {error}")
            finally:
                consumer.close()
        with self._progress_lock:
            for partition, known in progress.items():
                self._progress[(self.bootstrap, topic, partition)] = known
        return RecordCount(topic, sum(p.records for p in progress.values()), complete=not pending,
                           offsets=offsets, seconds=round(time.monotonic() - began, 3))
