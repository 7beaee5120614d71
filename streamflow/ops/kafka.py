"""`streamflow kafka topics|lag|tail`: what is in the pipeline's topics and how far the jobs are behind.

Clients, watermarks and offsets come from :class:`streamflow.kafka_access.KafkaHook` (the one module
that talks to Kafka), lag from :class:`streamflow.kafka_status.KafkaStatusHook`; what is added here is
what an operator asks on top: which topic plays which role, how many records arrived in a recent
window (the DLQ's growth), and the last messages of a topic.
Every read is ``read_committed``: the Flink sinks write with transactions, and records of an aborted
transaction are never delivered to anyone, so they are never counted or shown here either.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streamflow.kafka_access import KafkaHook
from streamflow.kafka_status import GroupLag, KafkaStatusHook
from streamflow.settings import Settings

INTERNAL_PREFIX = "__"  # __consumer_offsets, __transaction_state


def topic_roles(settings: Settings) -> dict[str, str]:
    """Topic name -> its role in the pipeline (names come from the settings)."""
    return {
        settings.topic_transactions: "input: generator -> Flink jobs",
        settings.topic_alerts: "output: fraud_detector alerts",
        settings.topic_metrics: "output: realtime_aggregator windows",
        settings.topic_dlq: "dead letters: rejected input with its reason",
    }


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    offsets: int  # end - start offsets: records plus, for transactional topics, markers/aborted records
    role: str


@dataclass(frozen=True)
class JobLag:
    job: str
    group: str
    lag: GroupLag | None
    error: str | None = None


@dataclass(frozen=True)
class WindowCount:
    topic: str
    since: float  # epoch seconds
    records: int
    complete: bool  # False: the time budget ran out, ``records`` is a lower bound


def _reader(hook: KafkaHook, **extra: Any) -> Consumer:
    """A read_committed consumer: records of aborted transactions are never shown or counted."""
    return hook.consumer({"isolation.level": "read_committed", **extra})


def topics(settings: Settings, timeout_s: float = 5.0) -> list[TopicInfo]:
    """Every non-internal topic of the broker, pipeline topics first."""
    hook = KafkaHook(settings, timeout_s=timeout_s)
    names = sorted(n for n in hook.topic_names() if not n.startswith(INTERNAL_PREFIX))
    roles = topic_roles(settings)
    infos = []
    for name in names:
        marks = hook.watermarks(name)
        infos.append(TopicInfo(name, len(marks), sum(high - low for low, high in marks.values()), roles.get(name, "")))
    order = list(roles)
    return sorted(infos, key=lambda t: (order.index(t.name) if t.name in roles else len(order), t.name))


def job_lags(settings: Settings, timeout_s: float = 5.0) -> list[JobLag]:
    """Consumer-group lag of every Flink job (group ids from the FlinkDeployments' ``--group-id``)."""
    hook = KafkaStatusHook(settings, timeout_s=timeout_s)
    rows = []
    from streamflow.ops.flink import pipeline_jobs

    for spec in pipeline_jobs():
        try:
            rows.append(JobLag(spec.job_key, spec.kafka_group_id, hook.group_lag(spec.kafka_group_id)))
        except Exception as error:  # one unreadable group must not hide the others
            why = str(error) or f"no answer within {timeout_s:.0f} s"
            rows.append(JobLag(spec.job_key, spec.kafka_group_id, None, f"{type(error).__name__}: {why}"))
    return rows


def describe_lag(row: JobLag) -> str:
    if row.error:
        return f"unknown ({row.error})"
    if row.lag is None or row.lag.lag is None:
        return "no committed offsets yet (job never checkpointed)"
    return f"{row.lag.lag} records behind"


def records_since(settings: Settings, topic: str, since: float, budget_s: float = 5.0,
                  timeout_s: float = 5.0) -> WindowCount:
    """Committed records of ``topic`` with a timestamp at or after ``since``, read within ``budget_s``."""
    hook = KafkaHook(settings, timeout_s=timeout_s)
    starts = hook.offsets_for_times(topic, int(since * 1000))
    ends = hook.end_offsets(topic, committed_only=True)
    # offset -1: no record at or after `since` in that partition.
    assign = [TopicPartition(topic, p, offset) for p, offset in starts.items() if 0 <= offset < ends.get(p, 0)]
    consumer = _reader(hook, **{"enable.partition.eof": True, "fetch.wait.max.ms": 100})
    try:
        received = _read_until_end(consumer, assign, budget_s, ends)
    finally:
        consumer.close()
    return WindowCount(topic, since, len(received.messages), complete=received.complete)


def offsets_since(settings: Settings, topic: str, since: float, timeout_s: float = 5.0) -> int:
    """Offsets written to ``topic`` since ``since`` (epoch s): its record count for a non-transactional
    topic such as the generator's input (an idempotent, non-transactional producer)."""
    hook = KafkaHook(settings, timeout_s=timeout_s)
    starts = hook.offsets_for_times(topic, int(since * 1000))
    ends = hook.end_offsets(topic, committed_only=True)
    return sum(max(0, ends.get(p, 0) - offset) for p, offset in starts.items() if offset >= 0)


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: str


def _decode(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", errors="replace")


def last_messages(settings: Settings, topic: str, count: int, timeout_s: float = 5.0) -> list[Message]:
    """The ``count`` newest committed messages of ``topic`` (across partitions, oldest first)."""
    hook = KafkaHook(settings, timeout_s=timeout_s)
    try:
        marks = hook.watermarks(topic, committed_only=True)
    except LookupError as error:
        raise LookupError(f"{error} (list them: streamflow kafka topics)") from None
    assign, ends = [], {}
    for p, (low, high) in marks.items():
        if high > low:
            assign.append(TopicPartition(topic, p, max(low, high - count)))
            ends[p] = high
    consumer = _reader(hook, **{"enable.partition.eof": True})
    try:
        found = _read_until_end(consumer, assign, timeout_s, ends).messages
    finally:
        consumer.close()
    found.sort(key=lambda m: (m.timestamp_ms, m.partition, m.offset))
    return found[-count:] if count else []


@dataclass(frozen=True)
class _Received:
    messages: list[Message]
    complete: bool  # every assigned partition was read to its end within the budget


def _read_until_end(consumer: Consumer, assign: list[TopicPartition], budget_s: float,
                    ends: dict[int, int]) -> _Received:
    """Read the assigned partitions from their offsets to ``ends`` (or EOF: a transaction marker may be
    last), within ``budget_s``. The consumer must have ``enable.partition.eof`` set."""
    messages: list[Message] = []
    pending = {tp.partition for tp in assign}
    if not assign:
        return _Received(messages, True)
    consumer.assign(assign)
    deadline = time.monotonic() + budget_s
    while pending and time.monotonic() < deadline:
        for raw in consumer.consume(num_messages=5000, timeout=0.2):
            error = raw.error()
            partition = int(raw.partition() or 0)
            if error is None:
                messages.append(_message(raw))
                if int(raw.offset() or 0) + 1 >= ends.get(partition, 0):
                    pending.discard(partition)
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
            else:
                raise RuntimeError(f"reading {raw.topic()}[{partition}]: {error}")
    return _Received(messages, not pending)


def _message(message: Any) -> Message:
    return Message(message.partition(), message.offset(), message.timestamp()[1], _decode(message.key()),
                   _decode(message.value()) or "")


def follow(settings: Settings, topic: str) -> Iterator[Message]:
    """New committed messages of ``topic`` as they arrive (until the caller stops iterating)."""
    hook = KafkaHook(settings, timeout_s=10.0)
    ends = [TopicPartition(topic, p, end) for p, end in hook.end_offsets(topic, committed_only=True).items()]
    consumer = _reader(hook)
    try:
        consumer.assign(ends)
        while True:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                yield _message(message)
    finally:
        consumer.close()


def format_message(message: Message, width: int = 240) -> str:
    """``p1@1042 12:01:07 key={"a": 1}...``: compact JSON when the value is JSON, cut at ``width``."""
    when = time.strftime("%H:%M:%S", time.localtime(message.timestamp_ms / 1000)) if message.timestamp_ms > 0 else "-"
    value = message.value
    with contextlib.suppress(ValueError):
        value = json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False)
    if len(value) > width:
        value = value[: width - 3] + "..."
    key = f" key={message.key}" if message.key else ""
    return f"p{message.partition}@{message.offset} {when}{key} {value}"


def print_tail(settings: Settings, topic: str, count: int, follow_new: bool, out: TextIO = sys.stdout) -> int:
    for message in last_messages(settings, topic, count):
        print(format_message(message), file=out, flush=True)
    if follow_new:
        try:
            for message in follow(settings, topic):
                print(format_message(message), file=out, flush=True)
        except KeyboardInterrupt:
            return 0
    return 0
