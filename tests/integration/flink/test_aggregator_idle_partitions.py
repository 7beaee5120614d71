"""A silent Kafka partition does not keep the realtime_aggregator's windows open.

Found on a long-lived stack (issue 13 note): the windows' clock is the minimum over every partition of
both source topics, and a partition that receives nothing has no clock at all - after a restore, or an
alerts partition no fraud lands on. One such partition kept every window open for good: none closed,
the early-fire timer re-evaluated all of them every 10 s (most of a core) and the state grew with every
minute of traffic. The job now marks a partition idle after ``--source-idle-seconds``.

Real Kafka and a real Flink cluster: the catalog's aggregator spec with its own group, its own
three-partition topics and a 5 s idle timeout instead of 300 s (a spec outside the catalog runs on a
cluster of its own). The class of inputs is "some partitions silent", covered by its extremes and a
change of which ones: first the alerts topic entirely silent and two of the three transaction
partitions silent; then the transactions on another partition and one alert on one alerts partition.
After each phase the window operators' input watermark (Flink's REST API) must be exactly the newest
event time minus the watermark delay: windows before it are closed. Red before the change: the
watermark stays at Long.MIN_VALUE.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from streamflow.runtime import flink_local_lifecycle
from streamflow.settings import Settings
from tests.hostile_messages import iso, valid_event
from tests.integration.flink.own_aggregator import own_aggregator

pytestmark = pytest.mark.integration

PARTITIONS = 3
IDLE_S = 5
DELAY_MS = 5_000  # the spec's --watermark-delay-seconds default
LONG_MIN = -(2**63)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the local cluster's REST API
        return json.loads(response.read())


@dataclasses.dataclass
class Running:
    settings: Settings
    rest: str
    job_id: str
    run: str


@pytest.fixture(scope="module")
def aggregator(stack: Settings) -> Iterator[Running]:
    with own_aggregator(stack, "idle", PARTITIONS, "--source-idle-seconds", str(IDLE_S)) as own:
        handle = flink_local_lifecycle.deploy(own.spec, own.settings)
        try:
            yield Running(own.settings, handle.rest_url, handle.job_id, own.run)
        finally:
            flink_local_lifecycle.stop(own.spec, own.settings, reset_state=True)


def _window_watermarks(running: Running) -> dict[str, list[int]]:
    """The input watermark of every subtask of each window operator, by vertex name."""
    vertices = _get(f"{running.rest}/jobs/{running.job_id}")["vertices"]
    marks: dict[str, list[int]] = {}
    for vertex in vertices:
        if "WindowAggregate" in vertex["name"]:
            rows = _get(f"{running.rest}/jobs/{running.job_id}/vertices/{vertex['id']}/watermarks")
            marks[vertex["name"][:60]] = [int(r["value"]) for r in rows if r["id"].endswith("currentInputWatermark")]
    return marks


def _produce(running: Running, topic: str, partition: int, documents: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": running.settings.kafka_bootstrap, "linger.ms": 5})
    for document in documents:
        producer.produce(topic, value=json.dumps(document).encode(), partition=partition)
    assert producer.flush(30) == 0


def _wait_for_watermark(running: Running, expected_ms: int, timeout_s: float = 90.0) -> dict[str, list[int]]:
    deadline = time.monotonic() + timeout_s
    marks: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        marks = _window_watermarks(running)
        if marks and all(m and all(v == expected_ms for v in m) for m in marks.values()):
            return marks
        time.sleep(2)
    return marks


def test_silent_partitions_do_not_hold_the_windows_open(aggregator: Running) -> None:
    start = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    store = f"idle-{aggregator.run}"

    def transactions(first: int, minutes: int) -> list[dict[str, Any]]:
        return [valid_event(f"idle-{aggregator.run}", i, start + timedelta(seconds=10 * i), store_id=store)
                for i in range(first, first + 6 * minutes)]

    # phase 1: alerts entirely silent, transactions on partition 0 of 3 only
    phase1 = transactions(0, 3)
    _produce(aggregator, aggregator.settings.topic_transactions, 0, phase1)
    newest = start + timedelta(seconds=10 * (len(phase1) - 1))
    expected = int(newest.timestamp() * 1000) - DELAY_MS
    marks = _wait_for_watermark(aggregator, expected)
    assert marks and all(v == expected for m in marks.values() for v in m), (
        f"window watermarks {marks}, expected {expected} ({iso(newest)} - 5 s); {LONG_MIN} means no clock")

    # phase 2: partition 0 falls silent; traffic moves to partition 2, one alert arrives on alerts partition 1
    phase2 = transactions(len(phase1), 2)
    _produce(aggregator, aggregator.settings.topic_transactions, 2, phase2)
    alert_time = start + timedelta(seconds=10 * len(phase1))
    _produce(aggregator, aggregator.settings.topic_alerts, 1, [{
        "alert_id": f"idle-{aggregator.run}", "store_id": store, "event_time": iso(alert_time)}])
    newest = start + timedelta(seconds=10 * (len(phase1) + len(phase2) - 1))
    expected = int(newest.timestamp() * 1000) - DELAY_MS
    marks = _wait_for_watermark(aggregator, expected)
    assert marks and all(v == expected for m in marks.values() for v in m), (
        f"window watermarks {marks}, expected {expected} ({iso(newest)} - 5 s)")
