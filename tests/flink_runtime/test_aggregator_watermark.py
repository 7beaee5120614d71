"""The realtime_aggregator on real Flink: no message can move its event-time clock past valid traffic.

Issue 17: the aggregator's watermark came from the raw event_time of every message, before any
validation. One message with an event_time far in the future (the processor dead-letters it as
``future_event_time``) moved the watermark past every later valid event, and those were dropped as
late: the metrics silently stopped. The property, on the job's own source DDL, table function and
window views (``realtime_aggregator.txns_source``, ``configure``, ``views``) on Flink's mini cluster:
for any stream of valid events (in event-time order up to a bounded disorder, so none is late) with
hostile messages mixed in anywhere - far-future event times on valid and on invalid bodies, the
hand-written and random hostile corpus (tests/hostile_messages.py), arbitrary bytes - the windows are
exactly those of the valid events alone (``flink_app.windows.aggregate``).

Out of the property's scope, by construction: a hostile message whose event time lies inside the valid
traffic's range or within the allowed skew of the wall clock. Its time is one a valid event may carry,
so it moves the clock no further than valid traffic can (see ``realtime_aggregator.watermark``).

The source here is a file (one message per line, so no message holds a newline) instead of Kafka;
Flink then assigns watermarks in an operator right after the source, and emits one as soon as the
event time jumps, which is what makes the old behaviour fail deterministically.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pyflink.common import RowKind

from flink_app import config, events, shape_check
from flink_app.jobs import realtime_aggregator
from flink_app.jobs.common import environments
from flink_app.windows import WindowEvent, aggregate
from tests.hostile_messages import _token, fixed_corpus, iso, random_hostile, valid_event

#: No shrinking: each example is a Flink job (~10-15 s); a failure prints its whole input instead.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
ARGS = ["--group-id", "test-aggregator-watermark"]
STORES = ("S1", "S2", "S3")
NOW = datetime.now(UTC)
#: Valid traffic: a ten-minute span ending well before the wall clock (so never "in the future").
VALID_FROM = (NOW - timedelta(minutes=25)).replace(second=0, microsecond=0)
VALID_SPAN_MS = 600_000
#: Hostile event times: at or before the valid traffic, or far beyond the wall clock + the skew.
PAST = VALID_FROM - timedelta(minutes=1)
FUTURE_FROM = NOW + timedelta(hours=1)  # + the job's skew (300 s) + this test's run time, with margin
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)


def _args() -> Any:
    return config.parse(realtime_aggregator.parser(), ARGS)


def _event(i: int, at: datetime, store: str, cents: int) -> bytes:
    """Even ``i``: the generator's canonical text (the Java fast path reads it); odd: another valid form
    (``json.dumps``' spaces: the Python check reads it). Both paths must count alike."""
    event = valid_event("wm", i, at, store_id=store, amount=cents / 100)
    if i % 2:
        return json.dumps(event).encode()
    text = json.dumps(event | {"amount": "A", "lat": "LA", "lon": "LO"}, separators=(",", ":"))
    return (text.replace('"A"', f"{cents // 100}.{cents % 100:02d}").replace('"LA"', "48.13700")
            .replace('"LO"', "11.57500").encode())


def _future(seconds: int) -> datetime:
    return min(FUTURE_FROM + timedelta(seconds=seconds), LATEST)


def _readable_time(raw: bytes) -> datetime | None:
    """The event_time a lenient reader (SQL's JSON_VALUE over the bytes decoded with replacement) may
    see, or None; used only to keep in-range times out of the hostile corpus."""
    try:
        document = json.loads(raw.decode("utf-8", "replace"))
        return events.parse_event_datetime(document["event_time"])
    except Exception:
        return None


def _out_of_range(raw: bytes | None) -> bool:
    """A hostile message this property covers: one line, and no readable time a valid event may carry."""
    if raw is None or b"\n" in raw or b"\r" in raw:
        return False
    moment = _readable_time(raw)
    return moment is None or moment <= PAST or moment >= FUTURE_FROM


CORPUS = [h.raw for h in fixed_corpus("wm", now=PAST) + random_hostile("wm", 1717, 60, now=PAST - timedelta(hours=1))
          if _out_of_range(h.raw)]

FAR_FUTURE_SECONDS = st.integers(0, int((LATEST - FUTURE_FROM).total_seconds()))
HOSTILE = st.one_of(
    # a valid body whose event time is too far ahead: the processor's future_event_time
    st.builds(lambda s, store: _event(10**6, _future(s), store, 1234), FAR_FUTURE_SECONDS, st.sampled_from(STORES)),
    # far ahead and invalid for another reason too (SQL can still read the time)
    st.builds(lambda s, token: _token(valid_event("wm", 10**6 + 1, _future(s)), "amount", token),
              FAR_FUTURE_SECONDS, st.sampled_from(["-1", "1e999", "0", "NaN", '"12.50"', "1e300"])),
    st.builds(lambda s: json.dumps({"event_time": iso(_future(s))}).encode(), FAR_FUTURE_SECONDS),
    st.sampled_from(CORPUS),
    st.binary(max_size=300).filter(lambda b: b"\n" not in b and b"\r" not in b),
)
VALID = st.lists(st.tuples(st.integers(0, VALID_SPAN_MS), st.integers(0, 120_000), st.sampled_from(STORES),
                           st.integers(1, 10**6)), min_size=5, max_size=40)


def _stream(valid: list[tuple[int, int, str, int]], hostile: list[tuple[int, bytes]],
            first_hostile: tuple[int, int]) -> tuple[list[bytes], list[WindowEvent], list[bytes]]:
    """Messages in arrival order, the valid events as the reference sees them, and the hostile messages.

    A hostile message at position ``p`` arrives right before the ``p``-th valid event (or last); the
    first one, far in the future, always arrives before some valid event (the issue's case)."""
    ordered = sorted(valid, key=lambda v: v[0] + v[1])  # event-time order up to 120 s of disorder
    timed = [(VALID_FROM + timedelta(milliseconds=offset), store, cents) for offset, _, store, cents in ordered]
    position, seconds = first_hostile
    placed = [(position % len(timed), _event(10**6 + 2, _future(seconds), STORES[0], 999)),
              *((p % (len(timed) + 1), raw) for p, raw in hostile)]
    keyed = [((i, 1, 0), _event(i, at, store, cents)) for i, (at, store, cents) in enumerate(timed)]
    keyed += [((p, 0, n), raw) for n, (p, raw) in enumerate(placed)]
    messages = [raw for _, raw in sorted(keyed, key=lambda k: k[0])]
    reference = [WindowEvent(at.timestamp(), store, cents / 100) for at, store, cents in timed]
    return messages, reference, [raw for _, raw in placed]


def _run(messages: list[bytes], work: Path, functions_jar: Path) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """The aggregator's windows for ``messages``: the final state of window_metrics' changelog."""
    source = work / f"txns-{time.monotonic_ns()}.raw"
    source.write_bytes(b"\n".join(messages) + b"\n")
    env, t_env = environments((functions_jar.as_uri(),))  # the job's own (session time zone UTC)
    env.set_parallelism(1)
    t_env.get_config().set("python.execution-mode", "thread")
    t_env.get_config().set("python.executable", sys.executable)  # the flink venv (pemja, flink_app deps)
    args = _args()
    realtime_aggregator.configure(t_env, args)
    t_env.execute_sql(realtime_aggregator.txns_source(
        args, {"connector": "filesystem", "path": str(source), "format": "raw"}))
    # No alerts: an empty view over the same source (its clock is the transactions' clock).
    t_env.execute_sql("CREATE TEMPORARY VIEW alerts AS SELECT CAST(NULL AS STRING) AS alert_id, "
                      "CAST(NULL AS STRING) AS store_id, ts FROM txns WHERE FALSE")
    for view in realtime_aggregator.views(args):
        t_env.execute_sql(view)
    state: dict[tuple[str, str], tuple[int, Decimal]] = {}
    query = "SELECT window_start, store_id, txn_count, amount_sum FROM window_metrics"
    with t_env.execute_sql(query).collect() as rows:
        for row in rows:
            key = (row[0], row[1])
            if row.get_row_kind() in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                state[key] = (int(row[2]), Decimal(row[3]))
            else:
                state.pop(key, None)
    return state


def _expected(reference: list[WindowEvent]) -> dict[tuple[str, str], tuple[int, Decimal]]:
    args = _args()
    results, dropped = aggregate(reference, size_s=args.window_seconds, watermark_delay_s=args.watermark_delay_seconds,
                                 allowed_lateness_s=args.allowed_lateness_seconds)
    assert dropped == [], "the generated valid stream must have no late event"
    return {(iso(datetime.fromtimestamp(r.window_start, UTC)), r.store_id): (r.txn_count, r.amount_sum)
            for r in results.values()}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aggregator-watermark")


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(valid=VALID, hostile=st.lists(st.tuples(st.integers(0, 100), HOSTILE), max_size=30),
       first_hostile=st.tuples(st.integers(0, 100), FAR_FUTURE_SECONDS))
@example(valid=[(i * 20_000, 0, STORES[i % 3], 1000 + i) for i in range(30)], hostile=[],
         first_hostile=(10, 86_400))  # the issue: one message a day ahead, then valid traffic
def test_no_hostile_message_moves_the_windows(valid: list[tuple[int, int, str, int]], hostile: list[tuple[int, bytes]],
                                              first_hostile: tuple[int, int], work: Path,
                                              functions_jar: Path) -> None:
    messages, reference, hostile_raw = _stream(valid, hostile, first_hostile)
    # both paths carry valid events: the Java fast path (canonical text) and the Python check (the rest)
    assert any(shape_check.has_shape(m.decode("utf-8", "replace")) for m in messages)
    assert any(not shape_check.has_shape(m.decode("utf-8", "replace")) and b'"hx-wm-' in m for m in messages)
    skew = _args().max_future_skew_seconds
    for raw in hostile_raw:  # each one the transaction processor dead-letters
        assert isinstance(events.parse_event(raw, max_future_skew_s=skew), events.Invalid), raw[:300]
    assert _run(messages, work, functions_jar) == _expected(reference)
