"""The three Flink jobs on real Kafka + PostgreSQL, deployed through streamflow.runtime.flink_local_lifecycle.

One crafted set (unique run id) holds ordinary transactions, every fraud pattern and every kind of
malformed event. Expectations are derived from the set itself: bronze holds exactly its valid
events, alerts cover exactly its fraud, the DLQ holds exactly its malformed records (with reasons),
and the metrics windows of its stores match the reference window function.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streamflow.catalog import flink_jobs
from streamflow.flink_spec import load_all
from streamflow.runtime import flink_local_lifecycle, flink_local_rest
from streamflow.settings import Settings

pytestmark = pytest.mark.integration

JOBS = tuple(job.name for job in flink_jobs())


@pytest.fixture(scope="module")
def flink_jobs(stack: Settings) -> Iterator[Settings]:
    """All three job clusters, started once for the module (in parallel) and stopped afterwards."""
    specs = load_all()
    already = {name for name in JOBS if flink_local_rest.job_state(specs[name], stack) == "RUNNING"}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda name: flink_local_lifecycle.deploy(specs[name], stack), JOBS))
        yield stack
    finally:
        for name in JOBS:
            if name not in already:
                flink_local_lifecycle.stop(specs[name], stack)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Crafted:
    """The run's events: valid ones (with the fraud pattern they carry) and malformed ones."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.valid: list[dict[str, Any]] = []
        self.malformed: list[tuple[bytes, str]] = []  # (bytes, expected reason)
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)

    def event(self, customer: str, at: datetime, *, pattern: str | None = None, **kw: Any) -> dict[str, Any]:
        event = {
            "schema_version": 1, "transaction_id": f"it-{self.run}-{len(self.valid)}",
            "customer_id": f"{self.run}-{customer}", "card_id": f"card-{customer}",
            "store_id": kw.pop("store_id", f"{self.run}-store-{len(self.valid) % 3}"),
            "store_category": "grocery", "amount": 20.0 + len(self.valid) % 7, "currency": "EUR",
            "channel": "pos", "event_time": iso(at), "lat": 48.137, "lon": 11.575,
            "is_fraud_truth": pattern is not None, "fraud_pattern": pattern,
        }
        event.update(kw)
        self.valid.append(event)
        return event

    def history(self, customer: str, start: datetime, n: int = 6, **kw: Any) -> None:
        for i in range(n):
            self.event(customer, start + timedelta(seconds=20 * i), **kw)


def crafted_set() -> Crafted:
    c = Crafted()
    b = c.base
    c.history("normal", b, n=8)
    c.history("velocity", b)
    for i in range(6):
        c.event("velocity", b + timedelta(seconds=200 + i * 8), pattern="velocity_burst")
    c.history("travel", b)
    c.event("travel", b + timedelta(seconds=150), pattern="impossible_travel", lat=40.7128, lon=-74.006)
    c.history("highvalue", b)
    c.event("highvalue", b + timedelta(seconds=150), pattern="high_value", amount=4800.0)
    c.history("cardtest", b)
    for i in range(5):
        c.event("cardtest", b + timedelta(seconds=130 + i * 20), pattern="card_testing", amount=0.5 + i * 0.3)
    # 02:00 of a day already past: a future event time (the test running between 00:00 and 03:00 UTC)
    # would move that partition's watermark hours ahead and the aggregator would drop the test's windows.
    night = b.replace(hour=2, minute=0, second=0)
    if night + timedelta(hours=2) > b:
        night -= timedelta(days=1)
    night_store = f"{c.run}-night"
    c.history("unusual", night, store_id=night_store)
    c.event("unusual", night + timedelta(hours=1), pattern="unusual_hour_category", store_id=night_store,
            store_category="jewelry", amount=900.0)

    good = json.dumps(c.valid[0]).encode()
    missing = dict(c.valid[0])
    del missing["transaction_id"]
    c.malformed = [
        (b"{this is not json", "bad_json"),
        (b"\xff\xfe\xfa not utf-8", "not_utf8"),
        (json.dumps(missing).encode(), "missing_field"),
        (json.dumps(c.valid[0] | {"transaction_id": f"bad-{c.run}-type", "amount": "12.50"}).encode(), "wrong_type"),
        (json.dumps(c.valid[0] | {"transaction_id": f"bad-{c.run}-neg", "amount": -5}).encode(), "out_of_range"),
        (good[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}', "oversized"),
    ]
    return c


@pytest.fixture(scope="module")
def produced(flink_jobs: Settings) -> dict[str, Any]:
    c = crafted_set()
    producer = Producer({"bootstrap.servers": flink_jobs.kafka_bootstrap, "linger.ms": 5,
                         "message.max.bytes": 2_000_000})
    delivered: dict[int, tuple[int, int]] = {}

    def report(index: int):  # type: ignore[no-untyped-def]
        def callback(error, message):  # type: ignore[no-untyped-def]
            assert error is None, error
            delivered[index] = (message.partition(), message.offset())
        return callback

    for i, event in enumerate(c.valid):
        producer.produce(flink_jobs.topic_transactions, key=event["customer_id"], value=json.dumps(event).encode(),
                         on_delivery=report(i))
    for j, (raw, _reason) in enumerate(c.malformed):
        producer.produce(flink_jobs.topic_transactions, key=f"{c.run}-bad", value=raw,
                         on_delivery=report(len(c.valid) + j))
    assert producer.flush(30) == 0
    return {"crafted": c, "delivered": delivered}


def poll_until(check, timeout_s: float = 120.0, interval_s: float = 2.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is not None and last is not False:
            return last
        time.sleep(interval_s)
    return last


def test_bronze_holds_exactly_the_valid_events(produced, warehouse_dsn: str):
    c: Crafted = produced["crafted"]
    expected = {e["transaction_id"]: produced["delivered"][i] for i, e in enumerate(c.valid)}

    def rows():  # type: ignore[no-untyped-def]
        with psycopg.connect(warehouse_dsn) as conn:
            found = conn.execute(
                "SELECT transaction_id, kafka_partition, kafka_offset, payload->>'amount' FROM bronze.raw_transactions "
                "WHERE transaction_id LIKE %s OR transaction_id LIKE %s",
                (f"it-{c.run}-%", f"bad-{c.run}-%"),
            ).fetchall()
        return found if len(found) >= len(expected) else None

    found = poll_until(rows) or []
    assert {r[0]: (r[1], r[2]) for r in found} == expected
    assert len(found) == len(expected)


def test_dlq_holds_exactly_the_malformed_events_with_reasons(produced, flink_jobs: Settings):
    c: Crafted = produced["crafted"]
    n_valid = len(c.valid)
    wanted = {produced["delivered"][n_valid + j]: reason for j, (_raw, reason) in enumerate(c.malformed)}
    raw_by_source = {produced["delivered"][n_valid + j]: raw for j, (raw, _r) in enumerate(c.malformed)}
    consumer = Consumer({"bootstrap.servers": flink_jobs.kafka_bootstrap, "group.id": f"it-dlq-{c.run}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    parts = consumer.list_topics(flink_jobs.topic_dlq, timeout=10).topics[flink_jobs.topic_dlq].partitions
    consumer.assign([TopicPartition(flink_jobs.topic_dlq, p, 0) for p in parts])
    found: dict[tuple[int, int], dict[str, Any]] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(found) < len(wanted):
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        record = json.loads(message.value() or b"{}")
        source = (record["source_partition"], record["source_offset"])
        if record["source_topic"] == flink_jobs.topic_transactions and source in wanted:
            found[source] = record
    consumer.close()
    assert {s: r["reason"] for s, r in found.items()} == wanted
    for source, record in found.items():
        original = raw_by_source[source]
        kept = base64.b64decode(record["payload_base64"])
        assert original.startswith(kept) and record["payload_size"] == len(original)


def test_alerts_match_the_crafted_fraud(produced, warehouse_dsn: str, flink_jobs: Settings):
    c: Crafted = produced["crafted"]
    fraud = {e["transaction_id"]: e["fraud_pattern"] for e in c.valid if e["fraud_pattern"]}

    def alerts():  # type: ignore[no-untyped-def]
        with psycopg.connect(warehouse_dsn) as conn:
            rows = conn.execute(
                "SELECT transaction_id, rules_fired, fraud_score, model_version, payload FROM bronze.raw_fraud_alerts "
                "WHERE transaction_id LIKE %s", (f"it-{c.run}-%",)).fetchall()
        return rows if len(rows) >= len(fraud) else None

    rows = poll_until(alerts) or []
    by_id = {r[0]: r for r in rows}
    assert set(by_id) == set(fraud), {"missed": set(fraud) - set(by_id), "false": set(by_id) - set(fraud)}
    for txn_id, pattern in fraud.items():
        _id, rules, score, version, payload = by_id[txn_id]
        assert pattern in rules, (txn_id, pattern, rules)
        assert 0.7 <= score <= 1.0 and version
        assert payload["alert_id"] == txn_id


def test_metrics_windows_have_the_expected_counts(produced, warehouse_dsn: str):
    from flink_app.windows import WindowEvent, aggregate

    c: Crafted = produced["crafted"]
    asserted_stores = {f"{c.run}-store-{i}" for i in range(3)}
    stream = [WindowEvent(datetime.fromisoformat(e["event_time"].replace("Z", "+00:00")).timestamp(),
                          e["store_id"], e["amount"]) for e in c.valid if e["store_id"] in asserted_stores]
    expected, _dropped = aggregate(stream)
    expected = {k: v for k, v in expected.items() if k[1] in asserted_stores}

    def rows():  # type: ignore[no-untyped-def]
        with psycopg.connect(warehouse_dsn) as conn:
            found = conn.execute(
                "SELECT extract(epoch FROM window_start), store_id, txn_count, amount_sum, alert_count "
                "FROM bronze.realtime_metrics WHERE store_id = ANY(%s)", (list(asserted_stores),)).fetchall()
        seen.clear()
        seen.update({(float(r[0]), r[1]): (r[2], r[3]) for r in found})
        return seen == want

    want = {k: (v.txn_count, Decimal(v.amount_sum)) for k, v in expected.items()}
    seen: dict[tuple[float, str], tuple[int, Decimal]] = {}
    poll_until(rows, timeout_s=90)
    assert seen == want  # on failure, pytest shows the windows the aggregator did write


#: Names Flink and PyFlink give their temporary files and dirs (working dirs, blobs, RPC/planner jars,
#: native libraries, web uploads, python archives, JAAS files): none may appear in /tmp.
FLINK_TMP_PREFIXES = ("jm_", "tm_", "flink-", "blobStore-", "python-dist-", "executionGraphStore-", "liblz4-java-",
                      "jaas-", "pyflink")


def test_flink_keeps_its_temporary_files_under_the_state_dir(produced, flink_jobs: Settings):
    """After the cluster started and ran the jobs over real events, /tmp holds nothing of it (it used to
    keep every run's working dirs: 7 GB in a day) and the state dir's tmp_dir holds its files."""
    from streamflow.runtime import flink_local_config

    paths = flink_local_config.layout(load_all()[JOBS[0]], flink_jobs)
    since = paths.jobmanager_pid.path.stat().st_mtime - 1
    leaked = sorted(entry.name for entry in Path("/tmp").iterdir()
                    if entry.name.startswith(FLINK_TMP_PREFIXES) and entry.lstat().st_mtime >= since)
    assert not leaked, f"the local Flink cluster left files in /tmp: {leaked[:10]}"
    assert any(entry.name.startswith("tm_") for entry in paths.tmp_dir.iterdir()), list(paths.tmp_dir.iterdir())
