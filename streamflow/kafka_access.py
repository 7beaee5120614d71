"""The one module that talks to Kafka: every Kafka client the platform uses is built here, and every
offset it reads (watermarks, committed offsets, offsets by time) is read here.

A hook in the Airflow-provider sense, one per external system (``streamflow.kubernetes_access`` is
the Kubernetes one): callers ask :class:`KafkaHook` for facts or for a configured client and never
assemble a librdkafka configuration themselves. Built on it:

- :mod:`streamflow.topics`: the pipeline's topics, created idempotently (``provision``);
- :mod:`streamflow.kafka_status`: committed-record counts and consumer-group lag (portal, summary);
- :mod:`streamflow.consumer_lag`: "has every job caught up" for the benches and fault tests;
- :mod:`streamflow.run_accounting`: the offsets a bootstrap run's generator wrote, and their records;
- :mod:`streamflow.ops.kafka`: ``streamflow kafka topics|lag|tail``;
- the local supervisor's broker probe (``streamflow.stack.kafka``) and bootstrap's preflight.

Every client is short-lived (one per call): no connection or state is shared between calls.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.kafka")

#: group.id of the probing consumers. They never subscribe or commit, so the group never has members
#: or offsets; librdkafka only insists that a consumer has one.
PROBE_GROUP = "streamflow-status-probe"
#: Offsets at or below this are librdkafka's "no offset" sentinels (OFFSET_INVALID = -1001, ...).
NO_OFFSET = -1
#: Kafka's TOPIC_ALREADY_EXISTS: another process created the topic between our listing and our create.
TOPIC_ALREADY_EXISTS = 36
#: Kafka errors that only mean "not ready yet" (no leader elected or known yet, a slow broker).
NOT_READY = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
             KafkaError._TRANSPORT, KafkaError._TIMED_OUT}


class KafkaHook:
    """Access to the pipeline's Kafka (``settings.kafka_bootstrap``); ``timeout_s`` bounds each request."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.timeout_s = timeout_s

    # ---- clients ----------------------------------------------------------------------------------
    def consumer(self, conf: Mapping[str, Any] | None = None) -> Consumer:
        """A consumer that commits nothing; ``conf`` (librdkafka names) adds to or overrides the defaults."""
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": PROBE_GROUP, "enable.auto.commit": False,
                         "socket.timeout.ms": int(self.timeout_s * 1000), **(conf or {})})

    def admin(self, conf: Mapping[str, Any] | None = None) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, **(conf or {})})

    # ---- reachability -----------------------------------------------------------------------------
    def reachable(self, timeout_s: float = 3.0) -> bool:
        """A TCP connection to the first bootstrap address succeeds (no Kafka client: librdkafka would
        log every refused connection)."""
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return True
        except OSError:
            return False

    def broker_count(self) -> int:
        """Brokers in the cluster's metadata (0: none answered yet); librdkafka's own logging is quieted."""
        admin = self.admin({"socket.timeout.ms": int(self.timeout_s * 1000), "log_level": 2})
        return len(admin.list_topics(timeout=self.timeout_s).brokers)

    # ---- topics -----------------------------------------------------------------------------------
    def topic_names(self) -> list[str]:
        """Every topic of the broker, Kafka's internal ones (``__consumer_offsets``...) included."""
        consumer = self.consumer()
        try:
            return list(consumer.list_topics(timeout=self.timeout_s).topics)
        finally:
            consumer.close()

    def create_topics(self, names: Iterable[str], *, partitions: int, retention_ms: int,
                      timeout_s: float = 30.0) -> dict[str, str]:
        """Create the missing topics among ``names``; return ``{topic: "created" | "exists"}``."""
        names = list(names)
        admin = self.admin()
        existing = set(admin.list_topics(timeout=timeout_s).topics)
        result = {t: "exists" for t in names if t in existing}
        missing = [NewTopic(topic, num_partitions=partitions, replication_factor=1,
                            config={"retention.ms": str(retention_ms)})
                   for topic in names if topic not in existing]
        if missing:
            for topic, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
                try:
                    future.result()
                    result[topic] = "created"
                    log.info("created topic", topic=topic, partitions=partitions)
                except KafkaException as error:
                    if error.args[0].code() == TOPIC_ALREADY_EXISTS:  # created concurrently
                        result[topic] = "exists"
                    else:
                        raise
        return result

    # ---- offsets ----------------------------------------------------------------------------------
    def watermarks(self, topic: str, *, committed_only: bool = False) -> dict[int, tuple[int, int]]:
        """Partition -> (low, high). With ``committed_only`` the high mark is the last stable offset:
        nothing beyond it is readable yet (an open transaction). LookupError for an unknown topic."""
        consumer = self.consumer({"isolation.level": "read_committed" if committed_only else "read_uncommitted"})
        try:
            metadata = consumer.list_topics(topic, timeout=self.timeout_s).topics[topic]
            if metadata.error is not None:
                raise LookupError(f"topic {topic}: {metadata.error}")
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout_s, cached=False)
                    for p in sorted(metadata.partitions)}
        finally:
            consumer.close()

    def end_offsets(self, topic: str, *, committed_only: bool = False) -> dict[int, int]:
        """Partition -> next offset to be written (the high watermark, or the last stable offset)."""
        return {p: high for p, (_, high) in self.watermarks(topic, committed_only=committed_only).items()}

    def end_offsets_when_ready(self, topic: str, attempts: int = 10) -> dict[int, int]:
        """:meth:`end_offsets`, retried while a partition has no leader yet (a topic created seconds ago
        answers NOT_LEADER_FOR_PARTITION until its leader is known)."""
        for attempt in range(attempts):
            try:
                return self.end_offsets(topic)
            except KafkaException as error:
                kafka_error = error.args[0] if error.args else None
                code = kafka_error.code() if isinstance(kafka_error, KafkaError) else None
                retriable = code in NOT_READY or bool(getattr(kafka_error, "retriable", lambda: False)())
                if not retriable or attempt == attempts - 1:
                    raise
                log.warning("kafka end offsets not available yet, retrying", topic=topic, error=kafka_error)
                time.sleep(min(0.5 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    def offsets_for_times(self, topic: str, since_ms: int) -> dict[int, int]:
        """Partition -> first offset with a timestamp at or after ``since_ms`` (-1: none yet)."""
        consumer = self.consumer()
        try:
            metadata = consumer.list_topics(topic, timeout=self.timeout_s).topics[topic]
            if metadata.error is not None:
                raise LookupError(f"topic {topic}: {metadata.error}")
            wanted = [TopicPartition(topic, p, since_ms) for p in sorted(metadata.partitions)]
            return {tp.partition: tp.offset for tp in consumer.offsets_for_times(wanted, timeout=self.timeout_s)}
        finally:
            consumer.close()

    def committed_offsets(self, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
        """Partition -> offset ``group`` committed for ``topic`` (negative when it committed none)."""
        consumer = self.consumer({"group.id": group})
        try:
            offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=self.timeout_s)
        finally:
            consumer.close()
        return {tp.partition: tp.offset for tp in offsets}

    def group_offsets(self, group: str, topics: Iterable[str] | None = None) -> dict[tuple[str, int], int]:
        """(topic, partition) -> offset ``group`` committed, for the partitions of ``topics`` (default:
        every topic of the broker but Kafka's internal ones) it committed.

        Asked with a plain consumer carrying the group's id (``committed()`` is one OffsetFetch
        request; the consumer never subscribes, so it never joins the group). Not with
        ``AdminClient.list_consumer_group_offsets``: its result arrives on librdkafka's background
        thread, and an AdminClient released right after the call crashed the Airflow api-server
        hosting the portal (SIGSEGV in that thread, seen with strace; it took Airflow's execution API
        down with it)."""
        consumer = self.consumer({"group.id": group})
        try:
            if topics is None:
                found = consumer.list_topics(timeout=self.timeout_s).topics.values()
            else:
                found = [consumer.list_topics(t, timeout=self.timeout_s).topics[t] for t in topics]
            wanted = [TopicPartition(meta.topic, p) for meta in found
                      if meta.error is None and not meta.topic.startswith("__") for p in sorted(meta.partitions)]
            committed = consumer.committed(wanted, timeout=self.timeout_s) if wanted else []
        finally:
            consumer.close()
        return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset > NO_OFFSET}

    # ---- records ----------------------------------------------------------------------------------
    def read_committed_range(self, topic: str, start: dict[int, int], end: dict[int, int], budget_s: float,
                             group: str = PROBE_GROUP) -> tuple[dict[int, list[bytes | None]], bool]:
        """Values of the committed records in [start, end) per partition (read_committed), and whether
        every partition was read to its end (or to its last stable offset) within ``budget_s``."""
        wanted = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
        values: dict[int, list[bytes | None]] = {p: [] for p in end}
        if not wanted:
            return values, True
        consumer = self.consumer({"group.id": group, "isolation.level": "read_committed",
                                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
        pending = set(wanted)
        try:
            consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in wanted.items()])
            deadline = time.monotonic() + budget_s
            while pending and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=5000, timeout=0.5):
                    partition = message.partition()
                    if partition not in pending:
                        continue
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:  # at the last stable offset: nothing more now
                            pending.discard(partition)
                            continue
                        raise RuntimeError(f"reading {topic}[{partition}]: {error}")
                    offset = message.offset()
                    if offset is None or offset >= wanted[partition][1]:
                        pending.discard(partition)
                        continue
                    values[partition].append(message.value())
                    if offset + 1 >= wanted[partition][1]:
                        pending.discard(partition)
        finally:
            consumer.close()
        return values, not pending
