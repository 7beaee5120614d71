"""`streamflow up --resume` (warm `make up`, ADR 0014) orders a warm start by its critical path: the
Flink session cluster starts from the first second when the state folder holds retained checkpoints,
Airflow starts once the resumed jobs are submitted, and a cluster or a resume that fails makes `up` exit
1 naming it and the fix. A plain or partial start, a first start and the Kubernetes runtime start no
cluster. The services are faked at the supervisor boundary; the real start is exercised by the e2e
warm-path test and `make bench B=make_up`."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from streamflow import cli, warehouse
from streamflow.ops import resume
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


class _Bootstrapped:
    done = True
    reason = "manual__1 succeeded and gold.fct_transactions holds 10 rows"


class _Never:
    done = False
    reason = "bootstrap_pipeline never ran on this stack"


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Services, migrations and status faked; a bootstrapped stack with retained checkpoints whose resume
    submits, then waits (each step recorded in order)."""
    seen: list[str] = []
    lock = threading.Lock()

    def record(event: str) -> None:
        with lock:
            seen.append(event)

    def fake_resume(settings, timeout_s: float = 300.0, on_submitted=None):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # the clients
        record("submitted")
        on_submitted()
        time.sleep(0.3)  # restore and stable window: Airflow starts meanwhile
        record("healthy")
        return {}

    def fake_cluster(settings) -> str:  # type: ignore[no-untyped-def]
        record("cluster starting")
        time.sleep(0.2)
        record("cluster ready")
        return "http://127.0.0.1:8081"

    monkeypatch.setattr(supervisor, "up", lambda settings, only=None: record(f"up {only}"))
    monkeypatch.setattr(warehouse, "apply_migrations", lambda settings: None)
    monkeypatch.setattr(ops_stack, "print_status", lambda settings: True)
    monkeypatch.setattr(resume, "previous_bootstrap", lambda settings, reader: _Bootstrapped())
    monkeypatch.setattr(resume, "MetadataDbRuns", lambda settings: None)
    monkeypatch.setattr(resume, "resume", fake_resume)
    monkeypatch.setattr(flink_local, "retained_checkpoints", lambda settings: True)
    monkeypatch.setattr(flink_local, "start_shared_cluster", fake_cluster)
    return seen


def _args(only: str | None = None, resume: bool = True) -> argparse.Namespace:
    return argparse.Namespace(only=only, resume=resume, no_status=True)


def test_a_warm_start_starts_the_cluster_first_and_airflow_after_the_submissions(calls: list[str], capsys) -> None:
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 0
    assert calls[0] == "cluster starting"  # before PostgreSQL and Kafka
    assert calls.index("up ['postgres', 'kafka']") < calls.index("submitted") < calls.index("up None")
    assert calls.index("up None") < calls.index("healthy")  # Airflow fills the restore and stable window
    out = capsys.readouterr().out
    assert "flink session cluster ready" in out and "Flink jobs resumed and healthy" in out


def test_a_cluster_that_does_not_start_fails_up_naming_it(calls: list[str], monkeypatch, capsys) -> None:
    def start(settings) -> str:  # type: ignore[no-untyped-def]
        raise FlinkJobError("flink cluster pipeline not ready after 90 s; see /x/jobmanager.log")

    monkeypatch.setattr(flink_local, "start_shared_cluster", start)
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 1
    err = capsys.readouterr().err
    assert "Flink session cluster did not start" in err and "jobmanager.log" in err and "fix:" in err


def test_a_resume_that_fails_before_submitting_still_starts_airflow_and_fails_up(calls: list[str], monkeypatch,
                                                                                   capsys) -> None:
    def fake_resume(settings, timeout_s: float = 300.0, on_submitted=None):  # type: ignore[no-untyped-def]
        raise FlinkJobError("submitting fraud-detector failed (exit 1); see its log: /x/submit.log")

    monkeypatch.setattr(resume, "resume", fake_resume)
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 1
    assert "up None" in calls and "submit.log" in capsys.readouterr().err


def test_a_first_start_leaves_the_cluster_to_the_deploy_tasks(calls: list[str], monkeypatch) -> None:
    monkeypatch.setattr(flink_local, "retained_checkpoints", lambda settings: False)
    monkeypatch.setattr(resume, "previous_bootstrap", lambda settings, reader: _Never())
    assert cli._cmd_up(load_settings(runtime="local"), _args()) == 0
    assert "cluster starting" not in calls and "submitted" not in calls and "up None" in calls


@pytest.mark.parametrize(("runtime", "only", "resume_flag"),
                         [("local", None, False), ("local", "postgres,kafka", True), ("kubernetes", None, True)])
def test_no_cluster_and_no_resume_for_a_plain_or_partial_start_or_on_kubernetes(
        calls: list[str], runtime: str, only: str | None, resume_flag: bool) -> None:
    remote = {"kafka_bootstrap_servers": "198.18.0.10:9092", "postgres_password": "x"} if runtime != "local" else {}
    assert cli._cmd_up(load_settings(runtime=runtime, **remote), _args(only, resume_flag)) == 0
    assert "cluster starting" not in calls and "submitted" not in calls


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


def test_retained_checkpoints_means_a_completed_checkpoint_of_a_catalog_job(tmp_path) -> None:
    from streamflow.flink_spec import load_all
    from streamflow.runtime.flink_local_config import layout

    settings = load_settings(state_dir=tmp_path / "state")
    assert not flink_local.retained_checkpoints(settings)
    checkpoints = layout(load_all()["fraud-detector"], settings).checkpoints_dir
    (checkpoints / ("a" * 32) / "chk-7").mkdir(parents=True)  # in progress: no _metadata yet
    assert not flink_local.retained_checkpoints(settings)
    (checkpoints / ("a" * 32) / "chk-7" / "_metadata").write_bytes(b"x")
    assert flink_local.retained_checkpoints(settings)


def test_a_deploy_failing_before_its_submission_does_not_hold_the_submitted_signal(monkeypatch) -> None:
    """One job's client fails; the others are submitted and then take long to reach RUNNING: "all
    submitted" comes when the last submission is done, not after every wait (Airflow is not held)."""
    from streamflow.runtime.flink_local_lifecycle import JobHandle

    events: list[str] = []
    lock = threading.Lock()

    def fake_deploy(spec, settings, on_submitted=None):  # type: ignore[no-untyped-def]
        if spec.name == "fraud-detector":
            raise FlinkJobError("submitting fraud-detector failed (exit 1)")
        on_submitted()
        time.sleep(0.3)  # the wait for RUNNING
        with lock:
            events.append(f"running {spec.name}")
        return JobHandle(spec.name, "0" * 32, "http://x", "RUNNING", None)  # type: ignore[arg-type]

    monkeypatch.setattr(flink_local, "deploy", fake_deploy)
    with pytest.raises(FlinkJobError, match="fraud-detector"):
        flink_local.deploy_all(load_settings(), on_submitted=lambda: events.append("ALL SUBMITTED"))
    assert events.count("ALL SUBMITTED") == 1 and events[0] == "ALL SUBMITTED"
