"""The run loop: stream -> encode -> pace -> sink, with progress logs, graceful shutdown and a summary.

SIGTERM/SIGINT only set a flag: the loop stops at the next chunk boundary, then the sink is flushed,
so a pod being stopped still delivers (and ledgers) everything it already produced. The exit status
is non-zero when any message was not delivered.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, TextIO

import numpy as np

from generator.config import GeneratorConfig
from generator.encode import Encoder, transaction_id
from generator.ledger import Ledger, MessageMeta
from generator.logs import JsonLog
from generator.model import World
from generator.pattern_rules import FRAUD_PATTERNS
from generator.producer import FileSink, KafkaSink, Sink
from generator.ratelimit import RateLimiter
from generator.stream import MALFORMED_KINDS, Batch, TransactionStream


@dataclass
class RunSummary:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    fraud: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAUD_PATTERNS, 0))
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_KINDS, 0))
    stopped_by: str = "end"
    cpu_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.delivered == self.sent

    @property
    def events_per_second(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_fields(self) -> dict[str, Any]:
        return {
            "sent": self.sent, "delivered": self.delivered, "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3), "events_per_s": round(self.events_per_second, 1),
            "cpu_s": round(self.cpu_s, 3), "fraud_events": sum(self.fraud.values()), "fraud_by_pattern": self.fraud,
            "malformed_events": sum(self.malformed.values()), "malformed_by_kind": self.malformed,
            "stopped_by": self.stopped_by,
        }


class StopFlag:
    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason


@contextmanager
def _signals(stop: StopFlag, log: JsonLog) -> Iterator[None]:
    """SIGTERM/SIGINT -> stop flag (main thread only; restores the previous handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.reason is None:
            log.info("shutdown requested", signal=name)
        stop.set(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stream(config: GeneratorConfig, start_time: datetime) -> TransactionStream:
    return TransactionStream(seed=config.seed, customers=config.customers, stores=config.stores,
                             fraud_rate=config.fraud_rate, malformed_rate=config.malformed_rate,
                             start_time=start_time)


def _last_event_ts(stream: TransactionStream, total_events: int) -> float:
    """Event time of the ``total_events``-th message of ``stream`` (generation only: no encoding, no I/O)."""
    seen, last = 0, 0.0
    for batch in stream.batches():
        take = min(len(batch), total_events - seen)
        if take > 0:
            last = max(last, float(batch.time[:take].max()))
        seen += take
        if seen >= total_events:
            return last
    return last


def ledger_metas(batch: Batch, world: World, seed: int, first_sequence: int) -> list[MessageMeta]:
    ids = world.customer_ids
    return [
        MessageMeta(seq, transaction_id(seed, seq), ids[c], MALFORMED_KINDS[m - 1] if m else None,
                    FRAUD_PATTERNS[p - 1] if p else None, e if e >= 0 else None)
        for seq, c, m, p, e in zip(
            range(first_sequence, first_sequence + len(batch)), batch.customer.tolist(), batch.malformed.tolist(),
            batch.pattern.tolist(), batch.episode.tolist(), strict=True)
    ]


def make_sink(config: GeneratorConfig, ledger: Ledger | None, stdout: TextIO | None = None,
              log: JsonLog | None = None) -> Sink:
    if config.output is not None:
        return FileSink(config.output, ledger, stdout)
    assert config.bootstrap_servers is not None
    return KafkaSink(config.bootstrap_servers, config.topic, ledger, log=log)


def _cpu_seconds() -> float:
    return time.process_time()


def run(config: GeneratorConfig, *, log: JsonLog | None = None, stdout: TextIO | None = None,
        stop: StopFlag | None = None, sink: Sink | None = None) -> RunSummary:
    """Generate until the bound (or a stop signal); returns the summary (also logged)."""
    log = log or JsonLog()
    stop = stop or StopFlag()
    log.info("starting", seed=config.seed, seed_was_given=config.seed_was_given,
             start_time=config.start_time.isoformat(), topic=config.topic, sink="kafka" if config.uses_kafka else
             config.output, events_per_second=config.events_per_second, total_events=config.total_events,
             duration_seconds=config.duration_seconds, fraud_rate=config.fraud_rate,
             malformed_rate=config.malformed_rate, customers=config.customers, stores=config.stores,
             ledger=str(config.ledger) if config.ledger else None)
    stream = _stream(config, config.start_time)
    if config.backfill and config.total_events:
        # Start early enough that the bounded stream's event time ends before now (same seed -> same
        # ids). The expected rate only gives the span to within a few per cent (hours over two weeks),
        # so a dry pass measures where this very stream ends, and the start moves by whole days: the
        # traffic follows the UTC clock (customers' active hours), so a stream started k days earlier
        # is the same stream k days earlier, and it ends within the day before now.
        span_s = config.total_events / stream.expected_events_per_event_second
        backfill_start = config.start_time - timedelta(seconds=span_s)
        probe = _stream(config, backfill_start)
        overshoot_s = _last_event_ts(probe, config.total_events) - config.start_time.timestamp()
        backfill_start -= timedelta(days=math.ceil(overshoot_s / 86400))
        log.info("backfill", start_time=backfill_start.isoformat(), span_days=round(span_s / 86400, 2),
                 measured_overshoot_s=round(overshoot_s))
        stream = _stream(config, backfill_start)
    encoder = Encoder(stream.world, config.seed, config.currency)
    ledger = Ledger(config.ledger) if config.ledger else None
    sink = sink or make_sink(config, ledger, stdout, log)
    limiter = RateLimiter(config.events_per_second)
    summary = RunSummary()
    began = time.monotonic()
    cpu_began = _cpu_seconds()
    last_log, last_sent = began, 0
    sequence = 1
    try:
        with _signals(stop, log):
            for batch in stream.batches():
                if config.total_events is not None:
                    batch = batch.take(slice(0, config.total_events - summary.sent))
                encoded = encoder.encode(batch, sequence)
                metas = ledger_metas(batch, stream.world, config.seed, sequence) if ledger else None
                sequence += len(batch)
                chunk = limiter.chunk_size()
                start = 0
                while start < len(batch):
                    if config.duration_seconds is not None and time.monotonic() - began >= config.duration_seconds:
                        stop.set("duration")
                    if stop.reason:
                        break
                    wait = limiter.delay(summary.sent)
                    if wait > 0:
                        sink.wait(wait)
                    end = min(len(batch), start + chunk)
                    sink.send(encoded.values[start:end], encoded.keys[start:end],
                              metas[start:end] if metas is not None else None)
                    _count(summary, batch, start, end)
                    start = end
                    now = time.monotonic()
                    if now - last_log >= config.log_interval_seconds:
                        log.info("progress", sent=summary.sent, delivered=sink.delivered, failed=sink.failed,
                                 in_flight=sink.in_flight(), events_per_s=round((summary.sent - last_sent) /
                                                                                (now - last_log), 1))
                        last_log, last_sent = now, summary.sent
                if stop.reason or (config.total_events is not None and summary.sent >= config.total_events):
                    break
            sink.finish(config.flush_timeout_seconds)
    finally:
        if ledger is not None:
            ledger.close()
    summary.stopped_by = stop.reason or ("total_events" if config.total_events else "end")
    summary.elapsed_s = time.monotonic() - began
    summary.cpu_s = _cpu_seconds() - cpu_began
    summary.delivered, summary.failed = sink.delivered, sink.failed
    fields = summary.as_fields()
    if summary.ok:
        log.info("finished", **fields)
    else:
        log.error("finished with undelivered messages", last_error=sink.last_error, **fields,
                  hint="check the broker at --bootstrap-servers / GENERATOR_BOOTSTRAP_SERVERS and the topic")
    return summary


def _count(summary: RunSummary, batch: Batch, start: int, end: int) -> None:
    summary.sent += end - start
    patterns = np.bincount(batch.pattern[start:end], minlength=len(FRAUD_PATTERNS) + 1)
    malformed = np.bincount(batch.malformed[start:end], minlength=len(MALFORMED_KINDS) + 1)
    for i, name in enumerate(FRAUD_PATTERNS, start=1):
        summary.fraud[name] += int(patterns[i])
    for i, name in enumerate(MALFORMED_KINDS, start=1):
        summary.malformed[name] += int(malformed[i])
