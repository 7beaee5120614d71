"""realtime_aggregator's SQL: the watermark guard uses the job's --max-future-skew-seconds on both sources,
and the table function applies the same skew as the processor (issue 17). The behaviour on real Flink
is tests/flink_runtime/test_aggregator_watermark.py."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from flink_app import config, events, sql
from flink_app.jobs import realtime_aggregator
from flink_app.windows import OVERALL
from tests.flink.builders import iso, make_event


def _statements(*extra: str) -> list[str]:
    args = config.parse(realtime_aggregator.parser(), ["--group-id", "g", *extra])
    kafka = sql.KafkaOptions("k:9092", "exactly-once")
    jdbc = sql.JdbcOptions("jdbc:postgresql://h/db", "u", "p")
    return realtime_aggregator.statements(args, kafka, jdbc)


@pytest.mark.parametrize(("seconds", "ms"), [(5, 5000), (300, 300_000), (0.25, 250), (86_400 * 366, 31_622_400_000)])
def test_interval_of_any_length(seconds: float, ms: int) -> None:
    # a literal INTERVAL 'n' SECOND only takes n < 100 in Flink SQL
    assert realtime_aggregator.interval(seconds) == f"(INTERVAL '0.001' SECOND * {ms})"


def test_both_sources_guard_their_watermark_with_the_jobs_skew() -> None:
    sources = [s for s in _statements("--max-future-skew-seconds", "42", "--watermark-delay-seconds", "7")
               if "WATERMARK FOR" in s]
    assert [s.split("(", 1)[0] for s in sources] == ["CREATE TABLE txns ", "CREATE TABLE alerts "]
    for ddl in sources:
        assert ("WATERMARK FOR ts AS CASE WHEN ts <= LOCALTIMESTAMP + (INTERVAL '0.001' SECOND * 42000) "
                "THEN ts - (INTERVAL '0.001' SECOND * 7000) END") in ddl


IDLE = "'scan.watermark.idle-timeout'"


@pytest.mark.parametrize(("given", "option"), [([], f"{IDLE} = '300000 ms'"),
                                              (["--source-idle-seconds", "2.5"], f"{IDLE} = '2500 ms'"),
                                              (["--source-idle-seconds", "0"], None)])
def test_both_kafka_sources_mark_a_silent_partition_idle(given: list[str], option: str | None) -> None:
    # a partition with no clock kept every window open (the real-cluster test is
    # tests/integration/flink/test_aggregator_idle_partitions.py)
    sources = [s for s in _statements(*given) if "WATERMARK FOR" in s]
    assert len(sources) == 2
    for ddl in sources:
        if option is None:
            assert "idle-timeout" not in ddl
        else:
            assert option in ddl


def test_an_unbounded_skew_leaves_the_watermark_unguarded() -> None:
    assert realtime_aggregator.watermark("ts", 5, 1e12) == "ts - (INTERVAL '0.001' SECOND * 5000)"


def test_table_function_applies_the_processors_skew() -> None:
    ahead = datetime.now(UTC) + timedelta(hours=1)
    raw = json.dumps(make_event(1, event_time=iso(ahead), store_id="S9", amount=12.5)).encode()
    strict = realtime_aggregator.ValidTransaction(str(events.schema_path()), 65_536)  # the default: 300 s
    lenient = realtime_aggregator.ValidTransaction(str(events.schema_path()), 65_536, max_future_skew_s=7200)
    for function in (strict, lenient):
        function.open(None)
    assert list(strict.eval(raw)) == []
    assert list(lenient.eval(raw)) == [("S9", 12.5), (OVERALL, 12.5)]  # per store and overall
    assert isinstance(events.parse_event(raw, now=time.time()), events.Invalid)  # the processor agrees (300 s)
