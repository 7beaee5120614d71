"""Where encoded messages go: Kafka (idempotent, acks=all, batched, lz4) or a JSON-lines file/stdout.

Both sinks count deliveries the same way, so the runner's metrics, the ledger and the exit code do
not care which one is in use; the file sink exists for tests and ``--dry-run`` (no broker needed).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from generator.ledger import Ledger, MessageMeta
from generator.logs import JsonLog, librdkafka_logger

POLL_EVERY = 1024  # serve delivery callbacks every this many produce() calls
_ID_FIELD = b'"transaction_id":"'

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 25,
    "batch.num.messages": 10_000,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 262_144,  # 256 MiB: stays inside the pod's 512 Mi limit
    "message.timeout.ms": 120_000,
    # After a broker restart librdkafka can keep a partition's new leader "not found in cache" until
    # the next metadata refresh (default every 5 min); refresh often enough to recover within seconds.
    "topic.metadata.refresh.interval.ms": 10_000,
    "client.id": "streamflow-generator",
}


def sequence_of(value: bytes) -> int:
    """The sequence number inside a message's ``"transaction_id":"t-<seed>-<sequence>"``.

    Every message kind keeps it: malformed ones never drop the id and ``bad_json`` cuts after it.
    """
    start = value.index(_ID_FIELD) + len(_ID_FIELD)
    end = value.index(b'"', start)
    return int(value[start:end].rpartition(b"-")[2])


class Sink(Protocol):
    delivered: int
    failed: int
    last_error: str | None

    def send(self, values: Sequence[str], keys: Sequence[bytes], metas: Sequence[MessageMeta] | None) -> None: ...

    def wait(self, seconds: float) -> None: ...

    def in_flight(self) -> int: ...

    def finish(self, timeout_s: float) -> None: ...


class KafkaSink:
    """confluent-kafka producer; ``produce`` in a tight loop, BufferError handled by polling."""

    def __init__(self, bootstrap_servers: str, topic: str, ledger: Ledger | None = None,
                 overrides: dict[str, Any] | None = None, log: JsonLog | None = None) -> None:
        from confluent_kafka import Producer

        self._topic = topic
        self._ledger = ledger
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self._pending: dict[int, MessageMeta] = {}  # ledger mode: sequence -> meta until delivery is known
        config = {**PRODUCER_DEFAULTS, **(overrides or {}), "bootstrap.servers": bootstrap_servers,
                  "on_delivery": self._on_delivery, "logger": librdkafka_logger(log or JsonLog())}
        self._producer = Producer(config)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        # One global callback (per-message callbacks make librdkafka's Python layer several times slower);
        # in ledger mode the message is matched to its metadata through the id inside the value.
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = str(err)
        if self._ledger is not None:
            meta = self._pending.pop(sequence_of(msg.value()))
            if err is None:
                self._ledger.record(meta, partition=msg.partition(), offset=msg.offset(), error=None)
            else:
                self._ledger.record(meta, partition=None, offset=None, error=str(err))

    def send(self, values: Sequence[str], keys: Sequence[bytes], metas: Sequence[MessageMeta] | None) -> None:
        produce, poll, topic = self._producer.produce, self._producer.poll, self._topic
        if metas is not None:
            self._pending.update((meta.sequence, meta) for meta in metas)
        for i, (value, key) in enumerate(zip(values, keys, strict=True)):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:  # local queue full: serve callbacks until there is room
                    poll(0.05)
            if not i % POLL_EVERY:
                poll(0)
        poll(0)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(left, 0.05))

    def in_flight(self) -> int:
        return len(self._producer)

    def finish(self, timeout_s: float) -> None:
        """Flush; whatever is still queued after ``timeout_s`` is purged and so reported as failed."""
        self._producer.flush(timeout_s)
        if len(self._producer):
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.flush(5.0)


class FileSink:
    """JSON lines to a file or stdout; "delivered" on write, offset = line number, no partition."""

    def __init__(self, output: str, ledger: Ledger | None = None, stdout: TextIO | None = None) -> None:
        self._ledger = ledger
        self._owned = output != "-"
        self._file: TextIO = (stdout or sys.stdout) if not self._owned else open(  # noqa: SIM115
            output, "w", encoding="utf-8", buffering=1 << 20)
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def send(self, values: Sequence[str], keys: Sequence[bytes], metas: Sequence[MessageMeta] | None) -> None:
        self._file.write("\n".join(values) + "\n")
        if self._ledger is not None and metas is not None:
            for line, meta in enumerate(metas, start=self.delivered):
                self._ledger.record(meta, partition=None, offset=line, error=None)
        self.delivered += len(values)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def in_flight(self) -> int:
        return 0

    def finish(self, timeout_s: float) -> None:
        self._file.flush()
        if self._owned:
            self._file.close()
