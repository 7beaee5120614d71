"""The realtime_aggregator's event time read in Java is the event time its SQL read before, for any record.

``canonical_event_time`` (io.streamflow.flink.CanonicalEventTime) reads the event time of a record of the
canonical shape without ``JSON_VALUE``; the source column is ``COALESCE(canonical_event_time(...),
JSON_EVENT_TIME)`` (``realtime_aggregator.raw_event_time``). The property, evaluated by Flink itself (mini
cluster, one job per example): for every record - texts drawn from the shape, the same with one character
inserted anywhere, and the hostile corpus - the new column equals ``JSON_EVENT_TIME`` alone, and the
Java function answers (is not NULL) exactly for the records of the shape within the byte limit. The
records of one job run through one chain, so the functions' shared per-thread parse
(``CanonicalEvent.parseCached``) is exercised on every switch between records.
"""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from flink_app import config, jvm_functions, shape_check
from flink_app.jobs import realtime_aggregator
from flink_app.jobs.common import environments
from tests.hostile_messages import fixed_corpus

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
MAX_BYTES = 1500  # small enough that a shape-drawn text can exceed it (ids up to 64 characters each)
INSERTS = ['"', "\\", "}", ",", "0", "9", "a", "-", ".", "T", "Z", ":", " ", "é", "\u0660"]


def _texts() -> st.SearchStrategy[list[bytes]]:
    shaped = st.from_regex(shape_check.SHAPE, fullmatch=True)
    mutated = st.tuples(shaped, st.integers(min_value=0), st.sampled_from(INSERTS)).map(
        lambda t: t[0][:t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1):])
    one = st.one_of(shaped, mutated).map(lambda text: text.encode("utf-8"))
    return st.lists(one, min_size=40, max_size=120)


def _evaluate(records: list[bytes], work: Path, functions_jar: Path) -> list[tuple[object, object, object]]:
    source = work / f"records-{time.monotonic_ns()}.raw"
    source.write_bytes(b"\n".join(records) + b"\n")
    env, t_env = environments((functions_jar.as_uri(),))
    env.set_parallelism(1)
    args = config.parse(realtime_aggregator.parser(), ["--group-id", "test-event-time",
                                                       "--max-event-bytes", str(MAX_BYTES)])
    realtime_aggregator.configure(t_env, args)
    t_env.execute_sql(f"CREATE TABLE records (`value` BYTES) WITH ('connector' = 'filesystem', "
                      f"'path' = '{source}', 'format' = 'raw')")
    shape = jvm_functions.sql_literal(shape_check.SHAPE)
    query = (f"SELECT {realtime_aggregator.raw_event_time(MAX_BYTES)}, {realtime_aggregator.JSON_EVENT_TIME}, "
             f"{jvm_functions.CANONICAL_EVENT_TIME}(`value`, {shape}, {MAX_BYTES}) IS NOT NULL FROM records")
    with t_env.execute_sql(query).collect() as rows:
        return [(row[0], row[1], row[2]) for row in rows]


@settings(max_examples=6, deadline=None, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(records=_texts())
def test_event_time_read_in_java_is_the_sql_event_time(records: list[bytes], tmp_path: Path,
                                                       functions_jar: Path) -> None:
    corpus = [h.raw for h in fixed_corpus("event-time") if h.raw and b"\n" not in h.raw and b"\r" not in h.raw]
    records = [raw for raw in records if b"\n" not in raw and b"\r" not in raw] + corpus
    results = _evaluate(records, tmp_path, functions_jar)
    assert len(results) == len(records)
    canonical = [shape_check.has_shape(raw.decode("utf-8", "replace")) and len(raw) <= MAX_BYTES for raw in records]
    assert any(canonical) and not all(canonical)  # both paths are exercised
    for raw, is_canonical, (combined, sql_only, answered) in zip(records, canonical, results, strict=True):
        assert combined == sql_only, raw
        assert answered == is_canonical, raw
        if is_canonical:
            assert combined is not None, raw
