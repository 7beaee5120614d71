"""The local "running" sensor against a fake Flink REST API (a real HTTP server on 127.0.0.1).

The fake answers the endpoints and JSON shapes a Flink 1.20.5 JobManager returned on a live job
(``/jobs/overview``, ``/jobs/<jid>``, ``/checkpoints``, ``/exceptions``, ``/metrics?get=numRestarts``),
so the code under test does real HTTP, parsing and decisions; only the JobManager is replaced.
Each case is one a user can meet: a restart loop caught in a RUNNING moment, a job that flaps, a job
whose sink blocks every checkpoint, and the healthy job. The first three went green before ADR 0010.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from streamflow import flink_health
from streamflow.flink_health import (
    JobHealth,
    RestSnapshot,
    Verdict,
    assess,
    needs_redeploy,
    parse_duration_s,
    sensor_decision,
    snapshot_from_rest,
)
from streamflow.flink_spec import spec_for
from streamflow.runtime import flink_local_config, flink_local_rest
from streamflow.runtime.health import job_health
from streamflow.settings import get_settings, load_settings

JOB = "transaction_processor"
JID = "cac4a8c16b93c8d31259b05fe0681f03"  # pragma: allowlist secret
PSQL = ('Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user '
        '"streamflow"')
STACK = ("java.io.IOException: unable to open JDBC writer\n\tat org.apache.flink.connector.jdbc...\n"
         "Caused by: java.sql.SQLException: connection failed\n\tat x\n" + PSQL + "\n\tat y")


class FakeFlink:
    """What one job's JobManager answers; tests mutate it between pokes."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.cancelled: list[str] = []

    def job(self, *, state: str, running_ms: int, vertex_status: str = "RUNNING", vertex_start_ms: int | None = None,
            restarts: int | None = 0, checkpoint_ms: int | None = None,
            exceptions: list[tuple[int, str]] = ()) -> None:  # type: ignore[assignment]
        self.documents = {
            "/jobs/overview": {"jobs": [{"jid": JID, "name": "transaction-processor", "state": state,
                                         "start-time": running_ms - 1000, "tasks": {"running": 2, "total": 2}}]},
            f"/jobs/{JID}": {
                "jid": JID, "name": "transaction-processor", "state": state, "start-time": running_ms - 1000,
                "timestamps": {"INITIALIZING": running_ms - 1000, "CREATED": running_ms - 500, "RUNNING": running_ms,
                               "RESTARTING": 0, "FAILED": 0},
                "vertices": [{"name": "Source: source_raw -> validate", "status": vertex_status,
                              "start-time": vertex_start_ms or running_ms + 100, "tasks": {"RUNNING": 2}}],
            },
            f"/jobs/{JID}/checkpoints": {
                "counts": {"completed": 1 if checkpoint_ms else 0},
                "latest": {"completed": {"id": 3, "status": "COMPLETED", "trigger_timestamp": (checkpoint_ms or 0) - 40,
                                         "latest_ack_timestamp": checkpoint_ms} if checkpoint_ms else None,
                           "savepoint": None, "failed": None, "restored": None},
            },
            f"/jobs/{JID}/exceptions": {
                "root-exception": exceptions[0][1] if exceptions else None,
                "timestamp": exceptions[0][0] if exceptions else None,
                "exceptionHistory": {"entries": [{"exceptionName": "java.io.IOException", "stacktrace": text,
                                                  "timestamp": ts} for ts, text in exceptions], "truncated": False},
            },
            f"/jobs/{JID}/metrics": [] if restarts is None else [{"id": "numRestarts", "value": str(restarts)}],
        }


@pytest.fixture()
def fake_flink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFlink]:
    fake = FakeFlink()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = fake.documents.get(self.path.split("?")[0])
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_PATCH(self) -> None:
            fake.cancelled.append(self.path)
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    # transaction-processor is job index 0: its REST port is the base. The JobManager pid file names this
    # very process, so the "cluster alive" check is the real one.
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("STREAMFLOW_FLINK_REST_PORT_BASE", str(port))
    monkeypatch.setenv("STREAMFLOW_FLINK_CHECKPOINT_INTERVAL_S", "10")
    get_settings.cache_clear()
    settings = get_settings()
    flink_local_config.layout(spec_for(JOB), settings).jobmanager_pid.write(os.getpid())
    yield fake
    server.shutdown()
    get_settings.cache_clear()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _poke(ti: Any = None) -> bool:
    from streamflow.runtime.local import flink_job_running

    return flink_job_running(JOB, ti=ti)


def test_restart_loop_caught_while_running_fails_and_names_the_exception(fake_flink: FakeFlink) -> None:
    """The user's bug: RESTARTING in a loop, the sensor polled at a RUNNING moment and went green."""
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 2000, restarts=7, checkpoint_ms=now - 600_000,
                   exceptions=[(now - 2500, STACK), (now - 9000, STACK)])
    with pytest.raises(RuntimeError) as failed:
        _poke()
    message = str(failed.value)
    assert "restart loop" in message and "7 restarts" in message
    assert "password authentication failed" in message  # the root cause, not the wrapper


def test_restarting_state_fails_once_restarts_reach_the_limit(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="RESTARTING", running_ms=now - 5000, vertex_status="CANCELED", restarts=1,
                   exceptions=[(now - 1000, STACK)])
    assert _poke() is False  # one restart may be a hiccup: keep waiting
    fake_flink.job(state="RESTARTING", running_ms=now - 5000, vertex_status="CANCELED", restarts=2,
                   exceptions=[(now - 1000, STACK)])
    with pytest.raises(RuntimeError, match="password authentication failed"):
        _poke()


def test_restarts_before_the_deploy_task_are_the_baseline(fake_flink: FakeFlink) -> None:
    """A job that restarted 5 times last week and has been stable since is not a loop now."""
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 3000, restarts=5, checkpoint_ms=now - 1000,
                   exceptions=[(now - 3500, STACK)])

    class TI:
        def xcom_pull(self, task_ids: str) -> dict[str, Any]:
            assert task_ids == f"deploy_{JOB}"
            return {"job_id": JID, "restarts": 5}

    assert _poke(TI()) is False  # restarted 3 s ago: not stable yet, but not a loop either
    with pytest.raises(RuntimeError, match="restart loop"):
        _poke()  # outside Airflow (no baseline): 5 restarts are a loop


def test_flapping_job_is_not_healthy_until_stable_for_the_window(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 60_000, vertex_start_ms=now - 4000, restarts=1,
                   checkpoint_ms=now - 1000, exceptions=[(now - 5000, STACK)])
    assert _poke() is False
    health = job_health(JOB, get_settings())
    assert not health.healthy and "restarted" in health.reason and "without a restart" in health.reason
    assert health.running_since == pytest.approx((now - 4000) / 1000)  # the tasks' restart, not RUNNING's


def test_running_without_a_checkpoint_since_start_is_not_healthy(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 120_000, restarts=0, checkpoint_ms=None)
    assert _poke() is False
    fake_flink.job(state="RUNNING", running_ms=now - 120_000, restarts=0, checkpoint_ms=now - 130_000)
    assert _poke() is False  # a checkpoint from before the (re)start proves nothing about now
    assert "no checkpoint completed since" in job_health(JOB, get_settings()).reason


def test_unknown_restart_count_is_not_ok(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 120_000, restarts=None, checkpoint_ms=now - 1000)
    health = job_health(JOB, get_settings())
    assert not health.healthy and health.restarts is None and "unknown" in health.reason
    assert _poke() is False


def test_healthy_job_passes(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="RUNNING", running_ms=now - 60_000, restarts=0, checkpoint_ms=now - 2000)
    assert _poke() is True
    health = job_health(JOB, get_settings())
    assert health.healthy and health.reason == "ok" and health.job_id == JID
    assert health.last_checkpoint_at == pytest.approx((now - 2000) / 1000)
    assert health.stable_window_s == 20.0  # two local checkpoint intervals


def test_terminal_state_fails_at_once(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="FAILED", running_ms=now - 60_000, vertex_status="FAILED", restarts=0,
                   exceptions=[(now - 1000, STACK)])
    with pytest.raises(RuntimeError, match="FAILED"):
        _poke()


def test_rest_down_but_jobmanager_alive_is_unknown(fake_flink: FakeFlink, tmp_path: Path) -> None:
    fake_flink.documents = {}  # answers 404 to everything
    health = job_health(JOB, get_settings())
    assert health.state == flink_health.UNKNOWN and not health.healthy
    assert _poke() is False


def test_cluster_down_fails(fake_flink: FakeFlink) -> None:
    flink_local_config.layout(spec_for(JOB), get_settings()).jobmanager_pid.remove()
    with pytest.raises(RuntimeError, match="not running"):
        _poke()


def test_cancel_goes_through_rest(fake_flink: FakeFlink) -> None:
    now = _now_ms()
    fake_flink.job(state="CANCELED", running_ms=now - 60_000, vertex_status="CANCELED")
    assert flink_local_rest.cancel_job(spec_for(JOB), get_settings(), JID, timeout_s=5) == "CANCELED"
    assert fake_flink.cancelled == [f"/jobs/{JID}?mode=cancel"]


# ---- pure rules ----------------------------------------------------------------------------------
def _health(**overrides: Any) -> JobHealth:
    base: dict[str, Any] = {"job": JOB, "state": "RUNNING", "restarts": 0, "last_exception": None,
                            "last_checkpoint_at": None, "running_since": None, "healthy": False, "reason": "x"}
    base.update(overrides)
    return JobHealth(**base)


@pytest.mark.parametrize(("health", "expected"), [
    (_health(state="RESTARTING", restarts=2), True),  # the restart loop
    (_health(state="RUNNING", restarts=3), True),  # restarted repeatedly, not proven healthy since: flapping
    (_health(state="FAILED", restarts=0), True),
    (_health(state="CANCELED", restarts=None), True),
    (_health(state="RESTARTING", restarts=1), False),  # one restart: Flink's own recovery (a lost TaskManager)
    (_health(state="FAILING", restarts=None), False),  # no evidence to act on
    (_health(state="RUNNING", restarts=3, healthy=True), False),  # restarted long ago, stable now
    (_health(state="RUNNING", restarts=0), False),  # a fresh start that has not proven health yet
])
def test_needs_redeploy(health: JobHealth, expected: bool) -> None:
    assert needs_redeploy(health) is expected


def test_parse_duration() -> None:
    assert parse_duration_s("60s") == 60 and parse_duration_s("1 min") == 60 and parse_duration_s("500ms") == 0.5
    assert parse_duration_s("60000") == 60
    with pytest.raises(ValueError):
        parse_duration_s("soon")


def test_snapshot_parses_the_flink_1_20_shapes() -> None:
    """Shapes recorded from a live Flink 1.20.5 job (metrics answer [] until the fetcher has run)."""
    detail = {"jid": JID, "state": "RESTARTING",
              "timestamps": {"RESTARTING": 1796238135489, "CREATED": 1796238125320, "RUNNING": 1796238133766,
                             "INITIALIZING": 1796238125280, "FAILED": 0},
              "vertices": [{"status": "FAILED", "start-time": 1796238133753}]}
    snap = snapshot_from_rest(detail, {"latest": {"completed": None}}, {"exceptionHistory": {"entries": [
        {"timestamp": 1796238131763, "stacktrace": "java.lang.RuntimeException: a\nCaused by: B: old"},
        {"timestamp": 1796238135489, "stacktrace": "java.lang.RuntimeException: a\nCaused by: C: new"}]}}, [])
    assert snap.restarts is None and snap.latest_checkpoint_ms is None
    assert snap.state_timestamps_ms == {"RESTARTING": 1796238135489, "CREATED": 1796238125320,
                                        "RUNNING": 1796238133766, "INITIALIZING": 1796238125280}
    assert snap.exceptions[0][0] == 1796238135489  # newest first
    assert assess(JOB, snap, 1796238140.0, 20).last_exception == "C: new"


# ---- properties ----------------------------------------------------------------------------------
_MS = st.integers(min_value=1_700_000_000_000, max_value=1_700_001_000_000)


@st.composite
def snapshots(draw: st.DrawFn) -> RestSnapshot:
    return RestSnapshot(
        job_id=JID,
        state=draw(st.sampled_from(["RUNNING", "RESTARTING", "FAILING", "FAILED", "CREATED", "CANCELED"])),
        state_timestamps_ms={"RUNNING": draw(_MS)},
        vertex_states=tuple(draw(st.lists(st.sampled_from(["RUNNING", "INITIALIZING", "FAILED"]), min_size=1,
                                          max_size=3))),
        vertex_start_ms=tuple(draw(st.lists(_MS, max_size=3))),
        restarts=draw(st.none() | st.integers(min_value=0, max_value=50)),
        latest_checkpoint_ms=draw(st.none() | _MS),
        exceptions=tuple((ts, "Caused by: X: boom") for ts in draw(st.lists(_MS, max_size=3))),
    )


@given(snapshots(), _MS, st.floats(min_value=0, max_value=600))
@hsettings(max_examples=300, deadline=None)
def test_healthy_only_with_all_the_evidence(snap: RestSnapshot, now_ms: int, window: float) -> None:
    """Whatever Flink says: healthy implies RUNNING, all tasks RUNNING, restart count known, no failure
    and no task (re)start within the window, and a checkpoint completed after the last (re)start."""
    now = now_ms / 1000 + 1000
    health = assess(JOB, snap, now, window)
    if not health.healthy:
        assert health.reason != "ok"
        return
    assert snap.state == "RUNNING" and set(snap.vertex_states) == {"RUNNING"} and snap.restarts is not None
    last_event = max([snap.state_timestamps_ms["RUNNING"], *snap.vertex_start_ms, *(t for t, _ in snap.exceptions)])
    assert now - last_event / 1000 >= window
    assert snap.latest_checkpoint_ms is not None and snap.latest_checkpoint_ms >= last_event


@given(snapshots(), _MS, st.floats(min_value=0, max_value=600), _MS)
@hsettings(max_examples=300, deadline=None)
def test_a_new_failure_never_makes_a_job_healthier(snap: RestSnapshot, now_ms: int, window: float,
                                                     failure_ms: int) -> None:
    now = max(now_ms, failure_ms) / 1000 + 1
    before = assess(JOB, snap, now, window)
    worse = RestSnapshot(**{**snap.__dict__, "exceptions": ((failure_ms, "Caused by: Y: again"), *snap.exceptions),
                            "restarts": None if snap.restarts is None else snap.restarts + 1})
    after = assess(JOB, worse, now, window)
    assert not (after.healthy and not before.healthy)
    decision_before = sensor_decision(before, 0)
    decision_after = sensor_decision(after, 0)
    if decision_before.verdict is Verdict.FAILED:
        assert decision_after.verdict is Verdict.FAILED  # a loop stays a loop


def test_settings_are_used_for_the_window() -> None:
    local = load_settings(flink_checkpoint_interval_s=7)
    assert flink_health.default_stable_window_s(spec_for(JOB), local) == 14


# ---- the vocabulary has one home -----------------------------------------------------------------
def test_state_sets_partition_as_documented() -> None:
    from streamflow.flink_health import ACTIVE_STATES, RECOVERING_STATES, STARTING_STATES, TERMINAL_STATES

    active = {"CREATED", "INITIALIZING", "RECONCILING", "RUNNING", "RESTARTING"}  # as the local REST client had them
    assert active == ACTIVE_STATES
    assert not TERMINAL_STATES & (ACTIVE_STATES | RECOVERING_STATES | STARTING_STATES)
    assert STARTING_STATES < ACTIVE_STATES


def test_flink_job_states_are_spelled_only_in_flink_health() -> None:
    """Another module listing Flink's states would be a second vocabulary that can drift (issue 16)."""
    import re

    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r'"(RESTARTING|FAILING|RECONCILING|INITIALIZING|CANCELLING)"')
    found = sorted(str(path.relative_to(root)) for folder in ("streamflow", "plugins")
                   for path in (root / folder).rglob("*.py") if pattern.search(path.read_text()))
    assert found == ["streamflow/flink_health.py"], found
