"""Reconciling one fault case against its ledger: every check here can fail.

The ledger (the generator's, or the hostile burst's own) says which Kafka (partition, offset) holds
which message. What landed is matched by those offsets, not by ids a primary key keeps unique:

* bronze: every valid ledger offset has exactly one ``bronze.raw_transactions`` row with that
  kafka_partition/kafka_offset and the ledger's transaction id; no row points at an offset of the run
  that is not a valid ledger offset, and no row of the run's id prefix points outside the ledger;
* ``dlq.errors`` (read_committed): every malformed ledger offset exactly once, with the expected
  reason; no record for any other offset of the run;
* ``fraud.alerts`` (read_committed) and ``bronze.raw_fraud_alerts``: the alerts of the run's
  transactions are exactly those a fault-free detector produces for the same stream
  (``reference_alerts.py``): same ids, once each in Kafka, same scores and rules;
* ``bronze.realtime_metrics``: per (window_start, store_id) of the run's event-time range, the
  transaction count and amount equal what bronze holds for that window (payload event_time).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from streamflow.flink_spec import FlinkJobSpec
from streamflow.runtime import flink_local_config
from streamflow.settings import Settings

Offset = tuple[int, int]  # (partition, offset)


@dataclass
class RunLedger:
    """Where every message of one run went in ``transactions.raw``."""

    valid: dict[Offset, str] = field(default_factory=dict)  # offset -> transaction id
    malformed: dict[Offset, str] = field(default_factory=dict)  # offset -> expected DLQ reason
    kinds: dict[Offset, str] = field(default_factory=dict)  # offset -> kind (generator kind / hostile kind)
    undelivered: int = 0

    @property
    def offsets(self) -> set[Offset]:
        return set(self.valid) | set(self.malformed)


def read_generator_ledger(path: Path, reasons: dict[str, str]) -> RunLedger:
    ledger = RunLedger()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not row["delivered"]:
            ledger.undelivered += 1
            continue
        where = (int(row["partition"]), int(row["offset"]))
        if row["valid"]:
            ledger.valid[where] = str(row["transaction_id"])
        else:
            kind = str(row["malformed_kind"])
            ledger.malformed[where] = reasons[kind]
            ledger.kinds[where] = kind
    return ledger


# ---- Kafka ------------------------------------------------------------------------------------------
def read_topic(settings: Settings, topic: str, start: dict[int, int], end: dict[int, int],
               timeout_s: float = 60.0) -> dict[int, list[tuple[int, bytes | None]]]:
    """partition -> [(offset, value)] for ``start <= offset < end`` (read_committed, in offset order)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"fault-read-{time.time_ns()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    out: dict[int, list[tuple[int, bytes | None]]] = {p: [] for p in end}
    todo = {p for p in end if end[p] > max(start.get(p, 0), 0)}
    try:
        consumer.assign([TopicPartition(topic, p, max(start.get(p, 0), 0)) for p in todo])
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                # read_committed stops at the last stable offset; aborted records and markers are
                # skipped, so a partition is done once the position reached the end offset
                for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                    if tp.offset >= end[tp.partition]:
                        todo.discard(tp.partition)
                continue
            if message.error():
                continue
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            if offset >= end[partition]:
                todo.discard(partition)
                continue
            out[partition].append((offset, message.value()))
            if offset + 1 >= end[partition]:
                todo.discard(partition)
    finally:
        consumer.close()
    if todo:
        raise AssertionError(f"{topic}: could not read up to {end} within {timeout_s:.0f} s (stuck: {sorted(todo)})")
    return out


def read_records(settings: Settings, topic: str, start: dict[int, int], wanted: Iterable[str],
                 key_of: Any, timeout_s: float = 180.0, settle_s: float = 3.0) -> list[dict[str, Any]]:
    """JSON records of ``topic`` from ``start`` (read_committed), polled until every ``wanted`` key
    (``key_of(record)``) was seen and then ``settle_s`` without new records, or ``timeout_s``.

    Transactional sinks make records visible when the checkpoint that covers them completes, hence
    the waiting; reading on after the last wanted record is how a duplicate would show up.
    """
    wanted = set(wanted)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"fault-read-{time.time_ns()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, max(start.get(p, 0), 0)) for p in parts])
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if wanted <= seen and time.monotonic() - quiet_since >= settle_s:
                    break
                continue
            quiet_since = time.monotonic()
            try:
                record = json.loads(message.value() or b"null")
            except ValueError:
                record = {"unparseable": (message.value() or b"")[:200].decode(errors="replace")}
            if not isinstance(record, dict):
                record = {"unparseable": repr(record)[:200]}
            records.append(record)
            key = key_of(record)
            if key is not None:
                seen.add(key)
    finally:
        consumer.close()
    return records


def _source(record: dict[str, Any], topic: str) -> Offset | None:
    if record.get("source_topic") != topic:
        return None
    try:
        return int(record["source_partition"]), int(record["source_offset"])
    except (KeyError, TypeError, ValueError):
        return None


# ---- the checks --------------------------------------------------------------------------------------
def bronze_against_ledger(dsn: str, topic: str, ledger: RunLedger, ranges: dict[int, tuple[int, int]],
                          id_prefix: str | None, started: datetime) -> dict[str, Any]:
    """lost / duplicated / wrong id / unexpected bronze rows, matched by Kafka offset.

    Only rows ingested since the case ``started`` can be its rows: an older row at one of the run's
    offsets (a re-created topic, another test's fixture) is not this run's duplicate. They are counted
    as ``older_rows_ignored``."""
    clauses: list[str] = []
    params: list[str | int | datetime] = [topic]
    for partition, (lo, hi) in ranges.items():
        clauses.append("(kafka_partition = %s AND kafka_offset >= %s AND kafka_offset < %s)")
        params += [partition, lo, hi]
    at_offsets = f"(kafka_topic = %s AND ({' OR '.join(clauses) or 'false'}))"
    # ingested_at has whole-second precision at best: a second's margin, far below any older row's age
    since = started.replace(microsecond=0) - timedelta(seconds=1)
    with psycopg.connect(dsn) as conn:
        older = conn.execute(f"SELECT count(*) FROM bronze.raw_transactions WHERE {at_offsets} AND ingested_at < %s",
                             [*params, since]).fetchone()
    where = f"({at_offsets} AND ingested_at >= %s)"
    params.append(since)
    if id_prefix:
        where += " OR transaction_id LIKE %s"
        params.append(id_prefix + "%")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT transaction_id, kafka_topic, kafka_partition, kafka_offset "
                            f"FROM bronze.raw_transactions WHERE {where}", params).fetchall()
    at: dict[Offset, list[str]] = {}
    unexpected: list[tuple[str, str, int, int]] = []
    for tid, row_topic, partition, offset in rows:
        where_from = (int(partition), int(offset))
        if row_topic == topic and where_from in ledger.valid:
            at.setdefault(where_from, []).append(tid)
        else:
            unexpected.append((tid, row_topic, partition, offset))
    lost = [o for o in ledger.valid if o not in at]
    duplicated = sum(len(ids) - 1 for ids in at.values())
    wrong_id = [(o, ids) for o, ids in at.items() if any(t != ledger.valid[o] for t in ids)]
    return {"rows": len(rows), "lost": len(lost), "duplicated": duplicated, "wrong_id": len(wrong_id),
            "unexpected": len(unexpected), "older_rows_ignored": older[0] if older else 0,
            "examples": {"lost": lost[:5], "wrong_id": wrong_id[:3], "unexpected": unexpected[:5]}}


def dlq_against_ledger(settings: Settings, ledger: RunLedger, ranges: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """Each malformed ledger offset exactly once in dlq.errors with its reason; nothing else of the run."""
    topic = settings.topic_transactions

    def in_run(source: Offset | None) -> bool:
        return source is not None and source[0] in ranges and ranges[source[0]][0] <= source[1] < ranges[source[0]][1]

    wanted = {f"{p}:{o}" for p, o in ledger.malformed}
    records = read_records(settings, settings.topic_dlq, {}, wanted,
                           lambda r: (lambda s: f"{s[0]}:{s[1]}" if s else None)(_source(r, topic)))
    mine = [(source, r) for r in records if in_run(source := _source(r, topic))]
    per_source = Counter(source for source, _r in mine)
    wrong_reason = [(s, r.get("reason"), ledger.malformed[s]) for s, r in mine  # type: ignore[index]
                    if s in ledger.malformed and r.get("reason") != ledger.malformed[s]]
    return {"missing": len(set(ledger.malformed) - set(per_source)),
            "duplicated": sum(n - 1 for s, n in per_source.items() if s in ledger.malformed and n > 1),
            "unexpected": sum(n for s, n in per_source.items() if s not in ledger.malformed),
            "wrong_reason": len(wrong_reason), "examples": wrong_reason[:5],
            "reasons": dict(Counter(str(r.get("reason")) for _s, r in mine))}


def reference_alerts(settings: Settings, detector: FlinkJobSpec, start: dict[int, int], end: dict[int, int],
                     work_file: Path) -> dict[str, Any]:
    """Alerts of a fault-free detector over ``transactions.raw`` from ``start`` (where the test gave the
    job empty state) to ``end``; see reference_alerts.py."""
    messages = read_topic(settings, settings.topic_transactions, start, end)
    with work_file.open("w") as out:
        for partition, entries in sorted(messages.items()):
            for offset, value in entries:
                encoded = base64.b64encode(value).decode() if value is not None else None
                out.write(json.dumps({"partition": partition, "offset": offset, "value": encoded}) + "\n")
    args = flink_local_config.local_job_args(detector, settings)
    options = args[args.index("-pym") + 2:] if "-pym" in args else args
    with work_file.open("rb") as stdin:
        completed = subprocess.run(
            [str(settings.venv_python("flink")), "-m", "tests.integration.faults.reference_alerts", *options],
            stdin=stdin, capture_output=True, cwd=settings.repo_root, check=False, timeout=600)
    if completed.returncode != 0:
        raise AssertionError(f"reference_alerts failed: {completed.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _alert_key(record: dict[str, Any]) -> tuple[float, float, tuple[str, ...]]:
    return (round(float(record["fraud_score"]), 6), round(float(record["model_score"] or 0.0), 6),
            tuple(record["rules_fired"]))


def alerts_against_reference(settings: Settings, reference: list[dict[str, Any]], transaction_ids: set[str],
                             alerts_start: dict[int, int]) -> dict[str, Any]:
    """The run's alerts in fraud.alerts (read_committed) and in bronze equal the reference's."""
    expected = {a["alert_id"]: _alert_key(a) for a in reference if a["transaction_id"] in transaction_ids}
    duplicated_reference = len([a for a in reference if a["transaction_id"] in transaction_ids]) - len(expected)
    records = read_records(settings, settings.topic_alerts, alerts_start, expected,
                           lambda r: r.get("alert_id") if r.get("alert_id") in transaction_ids else None)
    mine = [r for r in records if r.get("transaction_id") in transaction_ids]
    in_kafka = Counter(str(r.get("alert_id")) for r in mine)
    kafka_values = {str(r.get("alert_id")): _alert_key(r) for r in mine}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute("SELECT alert_id, fraud_score, model_score, rules_fired FROM bronze.raw_fraud_alerts "
                            "WHERE transaction_id = ANY(%s)", (sorted(transaction_ids),)).fetchall()
    in_bronze = {str(a): _alert_key({"fraud_score": s, "model_score": m, "rules_fired": r}) for a, s, m, r in rows}
    return {
        "expected": len(expected), "reference_duplicated": duplicated_reference,
        "kafka_missing": len(set(expected) - set(in_kafka)),
        "kafka_duplicated": sum(n - 1 for n in in_kafka.values()),
        "kafka_unexpected": len(set(in_kafka) - set(expected)),
        "kafka_mismatched": sum(1 for a, v in kafka_values.items() if a in expected and expected[a] != v),
        "bronze_missing": len(set(expected) - set(in_bronze)),
        "bronze_unexpected": len(set(in_bronze) - set(expected)),
        "bronze_mismatched": sum(1 for a, v in in_bronze.items() if a in expected and expected[a] != v),
        "examples": {"missing": sorted(set(expected) - set(in_kafka))[:5],
                     "unexpected": sorted(set(in_kafka) - set(expected))[:5],
                     "mismatched": [(a, expected[a], v) for a, v in kafka_values.items()
                                    if a in expected and expected[a] != v][:3]},
    }


def metrics_against_bronze(dsn: str, id_prefix: str, era: tuple[datetime, datetime], window_s: int,
                           overall: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Per (window_start, store_id) of the run's event-time range: realtime_metrics' txn_count and
    amount_sum equal bronze's count and sum of the run's rows (window from the payload's event_time).
    Polled: the aggregator's early firings update a window every few seconds until it is complete."""
    bronze_sql = f"""
        WITH runs AS (
            SELECT to_timestamp(floor(extract(epoch FROM (payload->>'event_time')::timestamptz) / {window_s})
                                * {window_s}) AS ws,
                   payload->>'store_id' AS store_id, round((payload->>'amount')::numeric, 2) AS amount
              FROM bronze.raw_transactions WHERE transaction_id LIKE %(prefix)s)
        SELECT ws, store_id, count(*), sum(amount) FROM runs GROUP BY ws, store_id
        UNION ALL
        SELECT ws, %(overall)s, count(*), sum(amount) FROM runs GROUP BY ws"""
    metrics_sql = ("SELECT window_start, store_id, txn_count, amount_sum FROM bronze.realtime_metrics "
                   "WHERE window_start >= %(lo)s AND window_start <= %(hi)s")
    lo, hi = era
    deadline = time.monotonic() + timeout_s
    while True:
        with psycopg.connect(dsn) as conn:
            expected = {(ws, s): (int(n), amount) for ws, s, n, amount in
                        conn.execute(bronze_sql, {"prefix": id_prefix + "%", "overall": overall}).fetchall()}
            found = {(ws, s): (int(n), amount) for ws, s, n, amount in
                     conn.execute(metrics_sql, {"lo": lo, "hi": hi}).fetchall()}
        differ = sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
        if not differ or time.monotonic() > deadline:
            break
        time.sleep(3)
    return {"windows": len(expected), "mismatched": len(differ),
            "examples": [(str(k[0]), k[1], expected.get(k), found.get(k)) for k in differ[:5]]}
