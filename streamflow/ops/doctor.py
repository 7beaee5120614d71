"""`streamflow doctor`: check every part of the running platform and say what is wrong, with the fix.

The parts: the services (PostgreSQL, Kafka, Airflow's processes), each Flink job and its restarts
(:func:`streamflow.runtime.health.job_health`), each job's consumer lag, the DLQ's growth, the last
``dbt_quality`` result and the disk. Each check yields a :class:`Finding` — ok, warn, fail or
unknown — and every finding that is not ok carries a fix: a command to run or a runbook entry
(docs/RUNBOOK.md). Unknown is never shown as ok (a check that could not look is a problem too).

The ``assess_*`` functions are pure (plain data and a clock in, findings out) so each rule is
unit-tested; :func:`run` only collects. Exit code of the command: 1 when any finding is fail or
unknown, else 0 (warnings do not fail a health check that a script may gate on).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streamflow.flink_health import CLUSTER_DOWN, DEFAULT_MAX_RESTARTS, RECOVERING_STATES, UNKNOWN, JobHealth
from streamflow.ops.render import ago
from streamflow.settings import Settings
from streamflow.stack.base import ServiceStatus

CLI = "bin/streamflow"
RUNBOOK = "docs/RUNBOOK.md"

#: Consumer lag (records) above which a job is reported as behind.
LAG_WARN_RECORDS = 10_000
#: Window in which the DLQ's growth is measured, and the share of the input that makes it a failure.
DLQ_WINDOW_S = 15 * 60
DLQ_FAIL_SHARE = 0.05
#: dbt_quality runs every 15 minutes by default: a last result older than this means it stopped running.
QUALITY_STALE_S = 60 * 60
#: Free space on the state dir's file system.
DISK_FAIL_BYTES = 2 * 1024**3
DISK_WARN_BYTES = 10 * 1024**3
DISK_FAIL_SHARE = 0.05
DISK_WARN_SHARE = 0.10

FAILED_STATUSES = ("fail", "error", "runtime error")


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    part: str  # "service postgres", "flink fraud_detector", "lag fraud_detector", "dlq", ...
    level: Level
    detail: str  # what was observed
    fix: str = ""  # what to do; empty when ok

    @property
    def bad(self) -> bool:
        return self.level in (Level.FAIL, Level.UNKNOWN)


def exit_code(findings: Iterable[Finding]) -> int:
    return 1 if any(f.bad for f in findings) else 0


# ---- pure rules ------------------------------------------------------------------------------------
def assess_service(row: ServiceStatus) -> Finding:
    part = f"service {row.name}"
    runbook = {"postgres": "#postgresql-down", "kafka": "#kafka-down", "airflow-scheduler": "#airflow-scheduler-stuck"}
    see = f"; runbook: {RUNBOOK}{runbook[row.name]}" if row.name in runbook else ""
    if row.ready:
        return Finding(part, Level.OK, f"healthy (pid {row.pid}) {row.detail}".rstrip())
    if row.running:
        return Finding(part, Level.FAIL, f"process {row.pid} runs but does not answer its health check",
                       f"look at {CLI} logs {row.name}; restart it: {CLI} down --only {row.name} && "
                       f"{CLI} up --only {row.name}{see}")
    return Finding(part, Level.FAIL, "not running",
                   f"start it: {CLI} up (the whole stack) or {CLI} up --only {row.name}; if it stopped by itself, "
                   f"{CLI} logs {row.name} says why{see}")


def assess_job(health: JobHealth) -> Finding:
    part = f"flink {health.job}"
    restart = f"{CLI} flink restart {health.job}"
    logs = f"{CLI} logs flink-{health.job}"
    restarts = "?" if health.restarts is None else str(health.restarts)
    if health.healthy:
        checkpoint = ago(health.checked_at - health.last_checkpoint_at) if health.last_checkpoint_at else "-"
        return Finding(part, Level.OK, f"RUNNING, {restarts} restarts, last checkpoint {checkpoint}")
    if health.state == UNKNOWN:
        return Finding(part, Level.UNKNOWN, health.reason, f"{logs}; Flink UI: {health.source}")
    if health.state == "RUNNING" and (health.restarts or 0) < DEFAULT_MAX_RESTARTS:
        return Finding(part, Level.WARN, f"not proven healthy yet: {health.reason}",
                       f"check again in a minute ({CLI} flink jobs); if it stays so: {logs}")
    if health.state in RECOVERING_STATES or health.state == "RUNNING":
        cause = f"; last exception: {health.last_exception}" if health.last_exception else ""
        return Finding(part, Level.FAIL, f"{health.state}, {restarts} restarts: a restart loop{cause}",
                       f"find the cause in {logs} (-n 200), fix it, then {restart}; runbook: "
                       f"{RUNBOOK}#a-flink-job-keeps-restarting")
    what = "its Flink cluster is down" if health.state == CLUSTER_DOWN else f"the job is {health.state}"
    cause = f"; last exception: {health.last_exception}" if health.last_exception else ""
    return Finding(part, Level.FAIL, f"{what}{cause}",
                   f"{restart} (starts the cluster if needed and resumes from the last checkpoint); "
                   f"why it stopped: {logs}")


def assess_lag(job: str, lag: int | None, error: str | None = None) -> Finding:
    part = f"lag {job}"
    if error:
        return Finding(part, Level.UNKNOWN, f"could not read the consumer group: {error}",
                       f"is Kafka up? {CLI} status; runbook: {RUNBOOK}#kafka-down")
    if lag is None:
        return Finding(part, Level.WARN, "the job's consumer group has committed no offsets (no checkpoint yet)",
                       f"a new job commits on its first checkpoint; if it stays so: {CLI} flink jobs")
    if lag > LAG_WARN_RECORDS:
        return Finding(part, Level.WARN, f"{lag} records behind",
                       f"normal right after a burst; if it keeps growing ({CLI} kafka lag), the job is "
                       f"stuck or restarting: {CLI} flink jobs; runbook: {RUNBOOK}#a-flink-job-keeps-restarting")
    return Finding(part, Level.OK, f"{lag} records behind")


def assess_dlq(topic: str, dead_letters: int, complete: bool, input_records: int, window_s: float) -> Finding:
    minutes = f"{window_s / 60:.0f} min"
    at_least = "" if complete else "at least "
    tail = f"{CLI} kafka tail {topic} -n 5 (each dead letter carries its reason)"
    if dead_letters == 0:
        return Finding("dlq", Level.OK, f"no dead letters in the last {minutes} ({input_records} input records)")
    share = dead_letters / input_records if input_records else 1.0
    of_input = f"{share:.1%} of {input_records} input records" if input_records else "and no input in that window"
    detail = f"{at_least}{dead_letters} dead letters in the last {minutes} ({of_input})"
    if share > DLQ_FAIL_SHARE:
        return Finding("dlq", Level.FAIL, detail, f"see why: {tail}; runbook: {RUNBOOK}#the-dlq-is-growing")
    return Finding("dlq", Level.WARN, detail, f"malformed input is expected in small numbers; see why: {tail}")


def assess_quality(last: dict[str, Any] | None, now: float, schedule: str) -> Finding:
    """``last``: the newest dbt_quality run (dag_run_id, at (epoch s), total, failed, warned, names)."""
    if last is None:
        return Finding("dbt_quality", Level.WARN, f"no result yet (schedule {schedule}; it skips until gold exists)",
                       "after bootstrap_pipeline, wait for the schedule or trigger dbt_quality in the Airflow UI")
    age = now - float(last["at"])
    run = f"run {last['dag_run_id']} ({ago(age)})"
    if int(last["failed"]):
        names = ", ".join(last.get("names") or [])
        return Finding("dbt_quality", Level.FAIL,
                       f"{last['failed']} of {last['total']} checks failed in {run}: {names}",
                       f"details: {CLI} psql -c \"SELECT test_name, status, failures, message FROM "
                       f"quality.dbt_test_results WHERE dag_run_id = '{last['dag_run_id']}' AND status <> 'pass'\"; "
                       f"runbook: {RUNBOOK}#dbt_quality-is-red")
    if age > QUALITY_STALE_S:
        return Finding("dbt_quality", Level.WARN, f"last result is old: {run}",
                       f"it should run on {schedule}: is the DAG paused or the scheduler stuck? "
                       f"runbook: {RUNBOOK}#airflow-scheduler-stuck")
    warned = f", {last['warned']} warnings" if int(last["warned"]) else ""
    return Finding("dbt_quality", Level.OK, f"{last['total']} checks passed{warned} in {run}")


def assess_disk(path: str, free: int, total: int) -> Finding:
    gib = free / 1024**3
    share = free / total if total else 0.0
    detail = f"{gib:.1f} GiB free ({share:.0%}) on the file system of {path}"
    fix = (f"free space (old logs under {path}/logs, `make clean` for a fresh start); "
           f"runbook: {RUNBOOK}#the-disk-is-full")
    if free < DISK_FAIL_BYTES or share < DISK_FAIL_SHARE:
        return Finding("disk", Level.FAIL, detail, fix)
    if free < DISK_WARN_BYTES or share < DISK_WARN_SHARE:
        return Finding("disk", Level.WARN, detail, fix)
    return Finding("disk", Level.OK, detail)


# ---- collectors ------------------------------------------------------------------------------------
def _guard(part: str, fix: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """Run a collector; an exception becomes an unknown finding (never an ok, never a crash)."""
    try:
        return check()
    except Exception as error:
        return [Finding(part, Level.UNKNOWN, f"could not check: {type(error).__name__}: {str(error)[:300]}", fix)]


def last_quality_run(settings: Settings) -> dict[str, Any] | None:
    import psycopg

    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT dag_run_id, extract(epoch FROM max(run_at)), count(*), "
            "count(*) FILTER (WHERE status = ANY(%s)), count(*) FILTER (WHERE status = 'warn'), "
            "(array_agg(test_name ORDER BY test_name) FILTER (WHERE status = ANY(%s)))[1:5] "
            "FROM quality.dbt_test_results GROUP BY dag_run_id ORDER BY max(run_at) DESC LIMIT 1",
            (list(FAILED_STATUSES), list(FAILED_STATUSES)),
        ).fetchone()
    if row is None:
        return None
    return {"dag_run_id": row[0], "at": float(row[1]), "total": row[2], "failed": row[3], "warned": row[4],
            "names": list(row[5] or [])}


def run(settings: Settings, now: Callable[[], float] = time.time) -> list[Finding]:
    from streamflow.ops import flink, kafka
    from streamflow.stack import supervisor

    findings: list[Finding] = []
    services = supervisor.status(settings)
    findings += [assess_service(s) for s in services]
    ready = {s.name for s in services if s.ready}

    findings += _guard("flink", f"{CLI} flink jobs", lambda: [assess_job(h) for _, h in flink.health_rows(settings)])

    kafka_down_fix = f"start Kafka first: {CLI} up --only kafka; runbook: {RUNBOOK}#kafka-down"
    if "kafka" in ready:
        findings += _guard("lag", kafka_down_fix, lambda: [
            assess_lag(r.job, r.lag.lag if r.lag else None, r.error) for r in kafka.job_lags(settings)])

        def dlq() -> list[Finding]:
            since = now() - DLQ_WINDOW_S
            dead = kafka.records_since(settings, settings.topic_dlq, since)
            arrived = kafka.offsets_since(settings, settings.topic_transactions, since)
            return [assess_dlq(settings.topic_dlq, dead.records, dead.complete, arrived, DLQ_WINDOW_S)]

        findings += _guard("dlq", kafka_down_fix, dlq)
    else:
        findings += [Finding(part, Level.UNKNOWN, "not checked: Kafka is down", kafka_down_fix)
                     for part in ("lag", "dlq")]

    if "postgres" in ready:
        findings += _guard("dbt_quality", f"apply the migrations: {CLI} up; then {CLI} psql",
                           lambda: [assess_quality(last_quality_run(settings), now(), settings.quality_schedule)])
    else:
        findings.append(Finding("dbt_quality", Level.UNKNOWN, "not checked: PostgreSQL is down",
                                f"start it: {CLI} up --only postgres; runbook: {RUNBOOK}#postgresql-down"))

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(settings.state_dir)
    findings.append(assess_disk(str(settings.state_dir), usage.free, usage.total))
    return findings


def report(findings: list[Finding]) -> str:
    """The doctor's text: one line per finding, the fix indented under each that is not ok, a summary."""
    width = max((len(f.part) for f in findings), default=10)
    lines = []
    for f in findings:
        lines.append(f"  {f.level.value:<7} {f.part:<{width}}  {f.detail}")
        if f.level is not Level.OK and f.fix:
            lines.append(f"  {'':<7} {'':<{width}}  fix: {f.fix}")
    bad = sum(1 for f in findings if f.bad)
    warned = sum(1 for f in findings if f.level is Level.WARN)
    if bad:
        lines.append(f"{bad} problem(s), {warned} warning(s): apply the fixes above ({RUNBOOK} has each incident).")
    elif warned:
        lines.append(f"no problem, {warned} warning(s).")
    else:
        lines.append("everything checked is healthy.")
    return "\n".join(lines)
