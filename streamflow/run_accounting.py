"""This run's events, from the generator's offsets to bronze rows (ADR 0010).

bootstrap_pipeline notes where ``transactions.raw`` and the DLQ end right before and right after its
generator ran (:func:`offsets_before`, :func:`measure_run_range`); its records are exactly those
offsets. ``wait_for_bronze`` then asks :func:`account_run` where they are: a bronze row with its
Kafka partition/offset in the range, or a DLQ record naming it. Old rows never count. The Kafka
reads are :class:`streamflow.kafka_access.KafkaHook`'s; the task callables are in
:mod:`streamflow.pipeline`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from streamflow.kafka_access import KafkaHook
from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.pipeline")

#: Bronze rows ingested this long before the run started still count (clock skew between the Airflow
#: worker and the Flink TaskManagers that stamp ``ingested_at``); older rows never do.
CLOCK_SKEW_S = 60.0
#: The run's range is counted with a read_committed consumer within this many seconds.
COUNT_BUDGET_S = 180.0


class BronzeWaitError(RuntimeError):
    """This run's events did not all reach bronze (or the DLQ) in time; the message says which are missing."""


@dataclass(frozen=True)
class RunRange:
    """The offsets of ``transactions.raw`` this DAG run's generator wrote: [start, end) per partition."""

    topic: str
    start: dict[int, int]
    end: dict[int, int]
    records: int  # records a read_committed consumer receives in the range (markers/aborted excluded)
    started_at: float  # epoch seconds just before the generator ran
    dlq_topic: str
    dlq_start: dict[int, int]  # DLQ end offsets before the generator ran: its records for this run follow

    def contains(self, partition: int, offset: int) -> bool:
        return self.start.get(partition, 0) <= offset < self.end.get(partition, 0)

    def to_xcom(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("start", "end", "dlq_start"):  # XCom is JSON: keys become strings anyway
            data[key] = {str(p): o for p, o in data[key].items()}
        return data

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> RunRange:
        offsets = {key: {int(p): int(o) for p, o in data[key].items()} for key in ("start", "end", "dlq_start")}
        return cls(topic=str(data["topic"]), records=int(data["records"]), started_at=float(data["started_at"]),
                   dlq_topic=str(data["dlq_topic"]), **offsets)


@dataclass(frozen=True)
class RunAccount:
    """Where this run's records are: bronze rows and DLQ records with an offset in the range."""

    expected: int
    bronze: dict[int, int]  # partition -> this run's rows in bronze
    dlq: dict[int, int]  # partition -> this run's offsets only in the DLQ
    per_partition_expected: dict[int, int]

    @property
    def accounted(self) -> int:
        return sum(self.bronze.values()) + sum(self.dlq.values())

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.accounted >= self.expected

    def missing_text(self) -> str:
        parts = []
        for partition, want in sorted(self.per_partition_expected.items()):
            got_b, got_d = self.bronze.get(partition, 0), self.dlq.get(partition, 0)
            if got_b + got_d < want:
                parts.append(f"partition {partition}: {want - got_b - got_d} of {want} missing "
                             f"({got_b} in bronze, {got_d} in the DLQ)")
        return "; ".join(parts) or "none missing"


#: group.id of the consumers that read a run's range (they never commit: nothing is ever stored for it).
RANGE_GROUP = "streamflow-run-range"


def offsets_before(settings: Settings) -> dict[str, Any]:
    """Where ``transactions.raw`` and the DLQ end now (right before the generator), as XCom."""
    kafka = KafkaHook(settings)
    start = kafka.end_offsets_when_ready(settings.topic_transactions)
    dlq_start = kafka.end_offsets_when_ready(settings.topic_dlq)
    log.info("transactions offsets before the generator", topic=settings.topic_transactions, start=start,
             dlq_start=dlq_start)
    return {"topic": settings.topic_transactions, "start": {str(p): o for p, o in start.items()},
            "started_at": time.time(), "dlq_topic": settings.topic_dlq,
            "dlq_start": {str(p): o for p, o in dlq_start.items()}}


def measure_run_range(settings: Settings, before: dict[str, Any]) -> RunRange:
    start = {int(p): int(o) for p, o in before["start"].items()}
    kafka = KafkaHook(settings)
    end = kafka.end_offsets_when_ready(str(before["topic"]))
    values, complete = kafka.read_committed_range(str(before["topic"]), start, end, COUNT_BUDGET_S, RANGE_GROUP)
    if not complete:
        raise BronzeWaitError(f"could not count the run's records in {before['topic']} within {COUNT_BUDGET_S:.0f} s "
                              f"(offsets {start} -> {end}); Kafka at {settings.kafka_bootstrap} is slow or down")
    records = sum(len(v) for v in values.values())
    run = RunRange(topic=str(before["topic"]), start=start, end=end, records=records,
                   started_at=float(before["started_at"]), dlq_topic=str(before["dlq_topic"]),
                   dlq_start={int(p): int(o) for p, o in before["dlq_start"].items()})
    log.info("this run's range of transactions", topic=run.topic, start=start, end=end, records=records)
    if records == 0:
        raise BronzeWaitError(f"the generator wrote no record to {run.topic} (end offsets {start} -> {end}): "
                              "see the run_generator task log")
    return run


def account_run(settings: Settings, run: RunRange) -> RunAccount:
    """Count this run's records in bronze (offset in range, ingested since the run started) and the
    DLQ (its records name their source partition/offset). An offset in both counts once."""
    conditions = sql.SQL(" OR ").join(
        sql.SQL("(kafka_partition = {} AND kafka_offset >= {} AND kafka_offset < {})").format(
            sql.Literal(p), sql.Literal(run.start.get(p, 0)), sql.Literal(e))
        for p, e in sorted(run.end.items()) if e > run.start.get(p, 0)) or sql.SQL("false")
    query = sql.SQL("SELECT kafka_partition, count(*) FROM bronze.raw_transactions WHERE kafka_topic = %s "
                    "AND ingested_at >= to_timestamp(%s) AND ({}) GROUP BY kafka_partition").format(conditions)
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        bronze = {int(p): int(n) for p, n in conn.execute(query, (run.topic, run.started_at - CLOCK_SKEW_S))}
        dlq_pairs = _dlq_offsets(settings, run)
        if dlq_pairs:
            found = conn.execute(
                "SELECT kafka_partition, kafka_offset FROM bronze.raw_transactions WHERE kafka_topic = %s AND "
                "ingested_at >= to_timestamp(%s) AND (kafka_partition, kafka_offset) IN "
                "(SELECT * FROM unnest(%s::int[], %s::bigint[]))",
                (run.topic, run.started_at - CLOCK_SKEW_S, [p for p, _ in dlq_pairs], [o for _, o in dlq_pairs]),
            ).fetchall()
            dlq_pairs -= {(int(p), int(o)) for p, o in found}
    dlq: dict[int, int] = {}
    for partition, _ in dlq_pairs:
        dlq[partition] = dlq.get(partition, 0) + 1
    # per partition the offsets in the range (an upper bound of its records: markers take offsets too)
    expected = {p: e - run.start.get(p, 0) for p, e in run.end.items()}
    return RunAccount(expected=run.records, bronze=bronze, dlq=dlq, per_partition_expected=expected)


def _dlq_offsets(settings: Settings, run: RunRange) -> set[tuple[int, int]]:
    """(partition, offset) of this run's records the DLQ holds (records written since the run began)."""
    kafka = KafkaHook(settings)
    end = kafka.end_offsets_when_ready(run.dlq_topic)
    values, _ = kafka.read_committed_range(run.dlq_topic, run.dlq_start, end, 30.0, RANGE_GROUP)
    pairs: set[tuple[int, int]] = set()
    for records in values.values():
        for value in records:
            try:
                record = json.loads(value or b"")
                pair = (int(record["source_partition"]), int(record["source_offset"]))
            except (ValueError, KeyError, TypeError):
                continue  # not a DLQ record of ours: it cannot account for an offset
            if record.get("source_topic") == run.topic and run.contains(*pair):
                pairs.add(pair)
    return pairs
