"""`streamflow up` (ADR 0014): a whole local start starts the Flink session cluster while the other
services start, and fails (exit 1, naming the cluster and the fix) when it does not come up; a partial
start (`--only`) or the Kubernetes runtime never starts it. The services are faked at the supervisor
boundary; the real start is exercised by the e2e tests."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from streamflow import cli, warehouse
from streamflow.ops import stack as ops_stack
from streamflow.ops.background import Background
from streamflow.runtime import flink_local
from streamflow.runtime.flink_local_config import FlinkJobError
from streamflow.settings import load_settings
from streamflow.stack import supervisor


def test_background_returns_the_value_and_reraises_in_the_caller() -> None:
    assert Background("ok", lambda: 42).result() == 42

    def boom() -> int:
        raise FlinkJobError("port 8081 in use")

    with pytest.raises(FlinkJobError, match="8081"):
        Background("boom", boom).result()


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(supervisor, "up", lambda settings, only=None: seen.append(f"up {only}"))
    monkeypatch.setattr(warehouse, "apply_migrations", lambda settings: seen.append("migrations"))
    monkeypatch.setattr(ops_stack, "print_status", lambda settings: True)
    return seen


def _args(only: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(only=only, resume=False, no_status=False)


def test_a_whole_local_start_starts_the_cluster_alongside(calls: list[str], monkeypatch, capsys) -> None:
    started = threading.Event()

    def start(settings) -> str:  # type: ignore[no-untyped-def]
        started.set()
        time.sleep(0.2)  # still starting while the services start
        calls.append("cluster ready")
        return "http://127.0.0.1:8081"

    monkeypatch.setattr(flink_local, "start_shared_cluster", start)
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 0
    assert started.is_set() and calls.index("up None") < calls.index("cluster ready")
    assert "flink session cluster ready" in capsys.readouterr().out


def test_a_cluster_that_does_not_start_fails_up_naming_it(calls: list[str], monkeypatch, capsys) -> None:
    def start(settings) -> str:  # type: ignore[no-untyped-def]
        raise FlinkJobError("flink cluster pipeline not ready after 90 s; see /x/jobmanager.log")

    monkeypatch.setattr(flink_local, "start_shared_cluster", start)
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 1
    err = capsys.readouterr().err
    assert "Flink session cluster did not start" in err and "jobmanager.log" in err and "fix:" in err


@pytest.mark.parametrize(("runtime", "only"), [("local", "postgres,kafka"), ("kubernetes", None)])
def test_no_cluster_for_a_partial_start_or_on_kubernetes(calls: list[str], monkeypatch, runtime: str,
                                                         only: str | None) -> None:
    def start(settings) -> str:  # type: ignore[no-untyped-def]
        raise AssertionError("the session cluster must not be started here")

    monkeypatch.setattr(flink_local, "start_shared_cluster", start)
    remote = {"kafka_bootstrap_servers": "198.18.0.10:9092", "postgres_password": "x"} if runtime != "local" else {}
    assert cli._cmd_up(load_settings(runtime=runtime, **remote), _args(only)) == 0


# ---- up --resume: Airflow starts once the jobs are submitted (ADR 0014) -------------------------------
class _Done:
    done = True
    reason = "manual__1 succeeded and gold.fct_transactions holds 10 rows"


@pytest.fixture()
def resumable(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from streamflow.ops import resume

    monkeypatch.setattr(flink_local, "start_shared_cluster", lambda settings: "http://127.0.0.1:8081")
    monkeypatch.setattr(resume, "previous_bootstrap", lambda settings, reader: _Done())
    monkeypatch.setattr(resume, "MetadataDbRuns", lambda settings: None)
    return calls


def test_airflow_starts_after_the_jobs_are_submitted(resumable: list[str], monkeypatch) -> None:
    from streamflow.ops import resume

    def fake_resume(settings, timeout_s: float = 300.0, on_submitted=None):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # the clients
        resumable.append("submitted")
        on_submitted()
        time.sleep(0.3)  # restore and stable window: Airflow starts meanwhile
        resumable.append("healthy")
        return {}

    monkeypatch.setattr(resume, "resume", fake_resume)
    assert cli._cmd_up(load_settings(runtime="local"), argparse.Namespace(only=None, resume=True, no_status=True)) == 0
    assert resumable.index("submitted") < resumable.index("up None") < resumable.index("healthy")


def test_a_resume_that_fails_before_submitting_still_starts_airflow_and_fails_up(resumable: list[str], monkeypatch,
                                                                                   capsys) -> None:
    from streamflow.ops import resume

    def fake_resume(settings, timeout_s: float = 300.0, on_submitted=None):  # type: ignore[no-untyped-def]
        raise FlinkJobError("submitting fraud-detector failed (exit 1); see its log: /x/submit.log")

    monkeypatch.setattr(resume, "resume", fake_resume)
    assert cli._cmd_up(load_settings(runtime="local"), argparse.Namespace(only=None, resume=True, no_status=True)) == 1
    assert "up None" in resumable and "submit.log" in capsys.readouterr().err


def test_deploy_all_reports_submitted_once_when_every_job_is_on_the_cluster(monkeypatch) -> None:
    from streamflow.runtime.flink_local_lifecycle import JobHandle

    events: list[str] = []
    lock = threading.Lock()

    def fake_deploy(spec, settings, on_submitted=None):  # type: ignore[no-untyped-def]
        time.sleep(0.05 * len(spec.name) % 0.2)
        with lock:
            events.append(f"submitted {spec.name}")
        on_submitted()
        with lock:
            events.append(f"running {spec.name}")
        return JobHandle(spec.name, "0" * 32, "http://x", "RUNNING", None)  # type: ignore[arg-type]

    monkeypatch.setattr(flink_local, "deploy", fake_deploy)
    flink_local.deploy_all(load_settings(), on_submitted=lambda: events.append("ALL SUBMITTED"))
    assert events.count("ALL SUBMITTED") == 1
    marker = events.index("ALL SUBMITTED")
    assert len([e for e in events[:marker] if e.startswith("submitted")]) == 3
