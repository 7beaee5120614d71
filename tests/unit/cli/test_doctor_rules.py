"""The doctor's rules (pure functions): every problem is named with a fix, unknown is never ok, and the
exit code says whether something is wrong."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from streamflow.flink_health import CLUSTER_DOWN, NOT_DEPLOYED, UNKNOWN, JobHealth
from streamflow.ops import doctor
from streamflow.ops.doctor import Finding, Level
from streamflow.stack.base import ServiceStatus

NOW = 1_800_000_000.0
STATES = ["RUNNING", "RESTARTING", "FAILING", "FAILED", "CANCELED", "FINISHED", "SUSPENDED", "CREATED",
          NOT_DEPLOYED, CLUSTER_DOWN, UNKNOWN]


def health(state: str, *, healthy: bool = False, restarts: int | None = 0, exception: str | None = None,
           checkpoint_age: float | None = 5.0, job: str = "transaction_processor") -> JobHealth:
    return JobHealth(job=job, state=state, restarts=restarts, last_exception=exception,
                     last_checkpoint_at=None if checkpoint_age is None else NOW - checkpoint_age,
                     running_since=NOW - 600, healthy=healthy, reason="ok" if healthy else f"{job} is {state}",
                     source="http://127.0.0.1:18081", checked_at=NOW)


findings_strategy = st.lists(st.builds(Finding, part=st.text(min_size=1, max_size=20), level=st.sampled_from(Level),
                                       detail=st.text(max_size=30), fix=st.text(max_size=30)), max_size=12)


@given(findings_strategy)
def test_exit_code_is_nonzero_exactly_when_something_failed_or_is_unknown(findings: list[Finding]) -> None:
    wrong = any(f.level in (Level.FAIL, Level.UNKNOWN) for f in findings)
    assert doctor.exit_code(findings) == (1 if wrong else 0)


@given(st.sampled_from(STATES), st.integers(min_value=0, max_value=20), st.booleans(),
       st.sampled_from(["transaction_processor", "fraud_detector", "realtime_aggregator"]))
def test_every_unhealthy_job_gets_a_fix_that_names_it(state: str, restarts: int, with_exception: bool,
                                                       job: str) -> None:
    finding = doctor.assess_job(health(state, restarts=restarts, job=job,
                                       exception="java.sql.SQLException: refused" if with_exception else None))
    assert finding.level is not Level.OK  # not healthy is never shown as ok
    assert finding.fix and job in finding.fix
    assert finding.part == f"flink {job}"


def test_a_healthy_job_is_ok_with_its_evidence() -> None:
    finding = doctor.assess_job(health("RUNNING", healthy=True, restarts=1, checkpoint_age=7))
    assert finding.level is Level.OK
    assert "1 restarts" in finding.detail and "7 s ago" in finding.detail


def test_a_stopped_job_fails_and_the_fix_is_the_restart_command() -> None:
    for state in (CLUSTER_DOWN, NOT_DEPLOYED, "CANCELED", "FAILED"):
        finding = doctor.assess_job(health(state))
        assert finding.level is Level.FAIL
        assert "bin/streamflow flink restart transaction_processor" in finding.fix


def test_a_restart_loop_fails_with_the_last_exception_and_the_runbook() -> None:
    looping = doctor.assess_job(health("RESTARTING", restarts=4, exception="java.net.ConnectException"))
    assert looping.level is Level.FAIL
    assert "ConnectException" in looping.detail and "RUNBOOK.md#a-flink-job-keeps-restarting" in looping.fix
    # RUNNING between two failures of a loop is still a loop
    assert doctor.assess_job(health("RUNNING", restarts=3)).level is Level.FAIL
    # just (re)started, not yet proven: a warning
    assert doctor.assess_job(health("RUNNING", restarts=0)).level is Level.WARN


def test_unknown_job_health_is_unknown_not_ok() -> None:
    assert doctor.assess_job(health(UNKNOWN)).level is Level.UNKNOWN


def test_services() -> None:
    up = doctor.assess_service(ServiceStatus("kafka", running=True, ready=True, pid=42, detail="127.0.0.1:59092"))
    assert up.level is Level.OK
    hung = doctor.assess_service(ServiceStatus("airflow-scheduler", running=True, ready=False, pid=43))
    assert hung.level is Level.FAIL and "RUNBOOK.md#airflow-scheduler-stuck" in hung.fix
    assert "down --only airflow-scheduler" in hung.fix
    down = doctor.assess_service(ServiceStatus("postgres", running=False, ready=False, pid=None))
    assert down.level is Level.FAIL and "up --only postgres" in down.fix and "#postgresql-down" in down.fix


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**7), st.booleans())
def test_dlq_levels(dead: int, arrived: int, complete: bool) -> None:
    finding = doctor.assess_dlq("dlq.errors", dead, complete, arrived, doctor.DLQ_WINDOW_S)
    if dead == 0:
        assert finding.level is Level.OK
    elif arrived and dead / arrived <= doctor.DLQ_FAIL_SHARE:
        assert finding.level is Level.WARN and "kafka tail dlq.errors" in finding.fix
    else:
        assert finding.level is Level.FAIL and "#the-dlq-is-growing" in finding.fix
    if dead and not complete:
        assert "at least" in finding.detail


@given(st.integers(min_value=0, max_value=10**13), st.integers(min_value=0, max_value=10**13),
       st.integers(min_value=1, max_value=10**13))
def test_more_free_disk_is_never_worse(free: int, more: int, total: int) -> None:
    rank = {Level.OK: 0, Level.WARN: 1, Level.FAIL: 2}
    total = max(total, free + more)
    assert rank[doctor.assess_disk("/x", free + more, total).level] <= rank[doctor.assess_disk("/x", free, total).level]


def test_disk_thresholds() -> None:
    gib = 1024**3
    assert doctor.assess_disk("/x", 1 * gib, 100 * gib).level is Level.FAIL
    assert doctor.assess_disk("/x", 5 * gib, 100 * gib).level is Level.WARN
    assert doctor.assess_disk("/x", 50 * gib, 100 * gib).level is Level.OK


def test_quality() -> None:
    never = doctor.assess_quality(None, NOW, "*/15 * * * *")
    assert never.level is Level.WARN and "*/15" in never.detail
    red = doctor.assess_quality({"dag_run_id": "scheduled__x", "at": NOW - 60, "total": 30, "failed": 2, "warned": 0,
                                 "names": ["not_null_x", "unique_y"]}, NOW, "*/15 * * * *")
    assert red.level is Level.FAIL and "not_null_x" in red.detail and "scheduled__x" in red.fix
    stale = doctor.assess_quality({"dag_run_id": "r", "at": NOW - 3 * 3600, "total": 30, "failed": 0, "warned": 0},
                                  NOW, "*/15 * * * *")
    assert stale.level is Level.WARN
    green = doctor.assess_quality({"dag_run_id": "r", "at": NOW - 60, "total": 30, "failed": 0, "warned": 1},
                                  NOW, "*/15 * * * *")
    assert green.level is Level.OK and "1 warnings" in green.detail


def test_lag() -> None:
    assert doctor.assess_lag("j", 0).level is Level.OK
    assert doctor.assess_lag("j", doctor.LAG_WARN_RECORDS + 1).level is Level.WARN
    assert doctor.assess_lag("j", None).level is Level.WARN
    assert doctor.assess_lag("j", None, "KafkaException: timed out").level is Level.UNKNOWN


def test_report_prints_each_fix_under_its_problem_and_a_summary() -> None:
    findings = [Finding("disk", Level.OK, "50 GiB free"),
                Finding("flink fraud_detector", Level.FAIL, "its Flink cluster is down",
                        "bin/streamflow flink restart x"),
                Finding("dlq", Level.WARN, "3 dead letters", "look")]
    text = doctor.report(findings)
    lines = text.splitlines()
    failed_at = next(i for i, line in enumerate(lines) if "flink fraud_detector" in line)
    assert re.search(r"fix: bin/streamflow flink restart x", lines[failed_at + 1])
    assert "fix:" not in lines[0]  # ok lines carry no fix
    assert lines[-1].startswith("1 problem(s), 1 warning(s)")


def test_runbook_has_every_entry_the_doctor_links() -> None:
    """Each ``RUNBOOK.md#anchor`` in the doctor's fixes is a heading of docs/RUNBOOK.md."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    source = (root / "streamflow" / "ops" / "doctor.py").read_text()
    anchors = set(re.findall(r"#([a-z0-9_-]+)", " ".join(re.findall(r"\{RUNBOOK\}(#[a-z0-9_-]+)", source))))
    runbook = (root / "docs" / "RUNBOOK.md").read_text()
    headings = {re.sub(r"[^a-z0-9_ -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    assert anchors, "the doctor links no runbook entry"
    assert anchors <= headings, f"runbook entries missing: {sorted(anchors - headings)}"
