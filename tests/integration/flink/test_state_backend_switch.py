"""Local state written with RocksDB moves to the HashMap backend without losing anything (ADR 0012).

The specs switched from RocksDB to HashMap. A checkpoint is in its backend's own format, so a state dir
of an earlier version, restored with the new backend, fails at every restart: a restart loop on the
user's first ``make up`` after pulling. The local runtime now (1) restores a checkpoint with the backend
its job file says wrote it (RocksDB when the job file predates the field) and (2) on the next deploy of
the running job switches it the way the operator does on Kubernetes: stop with a canonical savepoint,
submit again from it with the spec's backend.

Real Kafka, PostgreSQL and Flink: the aggregator (its windows are keyed state) on a cluster of its own,
with its own topics. Twelve events of one window are counted under RocksDB; the job is stopped, deployed
with the HashMap spec (still RocksDB: the restore), deployed again (the switch); eight more events of the
same window arrive. The window must count 20: with the state lost on the way it would count 8.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Producer

from streamflow.runtime import flink_local_config, flink_local_lifecycle, flink_local_rest
from streamflow.settings import Settings
from tests.hostile_messages import valid_event
from tests.integration.flink.own_aggregator import own_aggregator

pytestmark = pytest.mark.integration

ROCKSDB = {"state.backend.type": "rocksdb", "state.backend.incremental": "true"}


def _count(dsn: str, store: str) -> int | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT sum(txn_count) FROM bronze.realtime_metrics WHERE store_id = %s",
                           (store,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _wait_count(dsn: str, store: str, want: int, timeout_s: float = 90.0) -> int | None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = _count(dsn, store)
        if seen == want:
            return seen
        time.sleep(2)
    return seen


def test_rocksdb_state_is_restored_then_switched_to_hashmap_losing_nothing(stack: Settings,
                                                                           warehouse_dsn: str) -> None:
    with own_aggregator(stack, "backend", 1, parallelism=1) as own:
        settings, hashmap, run, txns = own.settings, own.spec, own.run, own.settings.topic_transactions
        assert flink_local_config.state_backend(hashmap) == "hashmap"
        rocksdb = dataclasses.replace(hashmap, flink_configuration={**hashmap.flink_configuration, **ROCKSDB})
        store = f"backend-{run}"
        window = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})

        def produce(first: int, seconds: list[int]) -> None:
            for n, second in enumerate(seconds):
                event = valid_event(f"backend-{run}", first + n, window + timedelta(seconds=second), store_id=store)
                producer.produce(txns, value=json.dumps(event).encode())
            assert producer.flush(30) == 0

        try:
            first = flink_local_lifecycle.deploy(rocksdb, settings)
            assert flink_local_rest.job_state_backend(rocksdb, settings, first.job_id) == "EmbeddedRocksDBStateBackend"
            produce(0, [5 * i for i in range(12)])  # 00..55 s: the window stays open (watermark 50 s)
            assert _wait_count(warehouse_dsn, store, 12) == 12
            counted_at = time.time() * 1000
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # a checkpoint that holds the 12 events
                documents = flink_local_rest.job_rest_documents(rocksdb, settings) or {}
                latest = ((documents.get("checkpoints") or {}).get("latest") or {}).get("completed") or {}
                if latest.get("trigger_timestamp", 0) > counted_at:
                    break
                time.sleep(1)
            flink_local_lifecycle.stop(rocksdb, settings)

            # the spec now says hashmap; the retained checkpoint was written by RocksDB: restored with RocksDB
            restored = flink_local_lifecycle.deploy(hashmap, settings)
            assert flink_local_rest.job_state_backend(hashmap, settings, restored.job_id) == \
                "EmbeddedRocksDBStateBackend"
            assert flink_local_lifecycle.recorded_state_backend(hashmap, settings) == "rocksdb"

            # the next deploy of the running job switches it through a canonical savepoint
            switched = flink_local_lifecycle.deploy(hashmap, settings)
            assert switched.job_id != restored.job_id
            assert flink_local_rest.job_state_backend(hashmap, settings, switched.job_id) == "HashMapStateBackend"
            assert flink_local_lifecycle.recorded_state_backend(hashmap, settings) == "hashmap"
            assert list(flink_local_config.layout(hashmap, settings).savepoints_dir.glob("savepoint-*/_metadata"))

            produce(100, [1 + 6 * i for i in range(8)])  # 01..43 s of the same window
            assert _wait_count(warehouse_dsn, store, 20) == 20  # 8 would mean the 12 were lost
        finally:
            flink_local_lifecycle.stop(hashmap, settings, reset_state=True)
