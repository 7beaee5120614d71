"""dbt_quality: source freshness + tests per group, every result kept in quality.dbt_test_results,
failures recorded as alerts (and posted to STREAMFLOW_ALERT_WEBHOOK_URL when set).

Green means dbt checked something *in this run* and nothing failed. A task therefore fails not only
on failing checks but whenever dbt itself did not produce this run's results: it exited with an
unhandled error (bad credentials, warehouse down: exit 2, no results file), it wrote no
``run_results.json`` / ``sources.json``, the file is older than the task's start (a previous run's
result is not this run's), or it selected nothing.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from streamflow.catalog import dbt_folder_selectors
from streamflow.dbt_runner import run_dbt
from streamflow.logs import get_log
from streamflow.settings import Settings, get_settings

log = get_log("streamflow.quality")

#: One test group (a task of dbt_quality) per model folder: {"staging": "path:models/staging", ...}.
TEST_GROUPS = dbt_folder_selectors()
BOOTSTRAP_DAG_ID = "bootstrap_pipeline"
BAD_STATUSES = frozenset({"fail", "error", "runtime error"})
#: dbt exits 0 (all good) or 1 (a handled failure: failing tests, a stale source); anything else is
#: dbt itself failing (2: unhandled error such as a refused connection).
DBT_HANDLED_EXIT_CODES = (0, 1)
#: File-system timestamps may be coarser than time.time(); a file is fresh if written after
#: ``started - MTIME_SLACK_S``.
MTIME_SLACK_S = 1.0


class QualityFailure(RuntimeError):
    """dbt ran and at least one check failed."""


class DbtDidNotCheck(QualityFailure):
    """dbt did not produce this run's results: nothing was checked, so the task must not be green."""


def _record(settings: Settings, dag_run_id: str, group: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in results.get("results", []):
        unique_id = str(item.get("unique_id"))
        rows.append({
            "dag_run_id": dag_run_id, "test_group": group, "unique_id": unique_id,
            "test_name": unique_id.split(".")[-2] if unique_id.startswith("test.") else unique_id,
            "status": str(item.get("status")), "failures": item.get("failures"),
            "message": (item.get("message") or "")[:2000], "execution_time": item.get("execution_time"),
        })
    _insert(settings, rows)
    return rows


def _insert(settings: Settings, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quality.dbt_test_results (dag_run_id, test_group, unique_id, test_name, status, "
            "failures, message, execution_time) VALUES (%(dag_run_id)s, %(test_group)s, %(unique_id)s, "
            "%(test_name)s, %(status)s, %(failures)s, %(message)s, %(execution_time)s) "
            "ON CONFLICT (dag_run_id, unique_id) DO UPDATE SET status = EXCLUDED.status, "
            "failures = EXCLUDED.failures, message = EXCLUDED.message, run_at = now()",
            rows,
        )


def _record_dbt_error(settings: Settings, dag_run_id: str, group: str, message: str) -> None:
    """Keep "dbt itself failed" in the results table too, so the Data Quality page charts the run as an
    error instead of showing no run at all. Best effort: with bad credentials this cannot write either."""
    try:
        _insert(settings, [{"dag_run_id": dag_run_id, "test_group": group, "unique_id": f"dbt.{group}",
                            "test_name": f"dbt ({group})", "status": "error", "failures": None,
                            "message": message[:2000], "execution_time": None}])
    except psycopg.Error as error:
        log.warning("could not record the dbt error", group=group, error=str(error))


def _verdict(group: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    bad = [r for r in rows if r["status"] in BAD_STATUSES]
    summary = {"group": group, "total": len(rows), "failed": len(bad),
               "warned": sum(1 for r in rows if r["status"] == "warn")}
    print(json.dumps(summary), flush=True)
    if bad:
        names = ", ".join(f"{r['test_name']} ({r['status']})" for r in bad[:10])
        raise QualityFailure(f"{len(bad)} dbt check(s) failed in {group}: {names}")
    return summary


def _generated_at(results: dict[str, Any]) -> float | None:
    text = str((results.get("metadata") or {}).get("generated_at") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def this_runs_results(path: Path, started: float, *, returncode: int, output: str, what: str) -> dict[str, Any]:
    """The dbt artifact at ``path`` if, and only if, it is this run's: raise :class:`DbtDidNotCheck` otherwise.

    ``started`` is the epoch second the task began; dbt's exit code and output tail go into the error
    so the task log says what dbt said (``Database Error ... password authentication failed``)."""
    tail = "\n".join(output.strip().splitlines()[-15:])
    if returncode not in DBT_HANDLED_EXIT_CODES:
        raise DbtDidNotCheck(f"`dbt {what}` failed (exit {returncode}) without checking anything; fix what dbt "
                             f"reports, then clear the task:\n{tail}")
    if not path.is_file():
        raise DbtDidNotCheck(f"`dbt {what}` wrote no {path.name} (exit {returncode}): nothing was checked\n{tail}")
    if path.stat().st_mtime < started - MTIME_SLACK_S:
        raise DbtDidNotCheck(f"{path} is older than this task (written {time.ctime(path.stat().st_mtime)}, task "
                             f"started {time.ctime(started)}): a previous run's results, not this one's")
    results: dict[str, Any] = json.loads(path.read_text())
    generated = _generated_at(results)
    if generated is None or generated < started - MTIME_SLACK_S:
        raise DbtDidNotCheck(f"{path} was generated at {(results.get('metadata') or {}).get('generated_at')!r}, "
                             f"before this task started ({time.ctime(started)}): not this run's results")
    if not results.get("results"):
        raise DbtDidNotCheck(f"`dbt {what}` checked nothing (empty results in {path.name}): the selector or "
                             "the project is broken")
    if returncode != 0 and not any(str(r.get("status")) in BAD_STATUSES for r in results["results"]):
        raise DbtDidNotCheck(f"`dbt {what}` exited {returncode} but reports no failing check:\n{tail}")
    return results


def _successful_bootstraps(context: dict[str, Any]) -> int | None:
    """Successful bootstrap_pipeline runs, asked through the task's own Airflow API (None outside a task)."""
    ti = context.get("ti") or context.get("task_instance")
    count = getattr(ti, "get_dr_count", None)
    if count is None:
        return None
    try:
        return int(count(dag_id=BOOTSTRAP_DAG_ID, states=["success"]))
    except Exception as error:  # an older task SDK or a supervisor hiccup: fall back to the warehouse
        log.warning("could not count bootstrap runs", error=f"{type(error).__name__}: {error}")
        return None


def pipeline_bootstrapped(**context: Any) -> bool:
    """Run the checks (dbt_quality) or the build (dbt_transform) once the pipeline was ever bootstrapped;
    skip (visibly) only before that.

    Evidence of a bootstrap: gold exists in the warehouse, or bootstrap_pipeline has a successful run.
    A warehouse that cannot be reached fails this task (red), it does not skip. When the answer is
    "never bootstrapped", the log says so and the Data Quality page shows the run as skipped for
    that reason."""
    s = get_settings()
    with psycopg.connect(s.warehouse_dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT to_regclass('gold.fct_transactions') IS NOT NULL").fetchone()
    gold = bool(row and row[0])
    runs = _successful_bootstraps(context)
    dag_id = str(getattr(context.get("dag"), "dag_id", "") or "dbt_quality")
    if gold or runs:
        log.info(f"pipeline bootstrapped: running {dag_id}", gold_exists=gold, bootstrap_runs=runs)
        return True
    message = (f"SKIPPING this {dag_id} run: the pipeline was never bootstrapped (no gold."
               "fct_transactions, no successful bootstrap_pipeline run). Trigger bootstrap_pipeline "
               f"(`bin/streamflow bootstrap`); the next {dag_id} run goes ahead.")
    log.warning(message, gold_exists=gold, bootstrap_runs=runs)
    print(message, flush=True)
    return False


def source_freshness(**context: Any) -> dict[str, Any]:
    """``dbt source freshness``: a bronze table whose newest row is older than its ``error_after``
    (ingestion stopped) fails the task."""
    s = get_settings()
    started = time.time()
    run_id = str(context["run_id"])
    target = s.dbt_artifacts / "quality" / "freshness"
    sources_file = target / "sources.json"
    sources_file.unlink(missing_ok=True)  # a previous run's file must never be read as this one's
    result = run_dbt(s, ["source", "freshness"], target_path=target, check=False)
    try:
        results = this_runs_results(sources_file, started, returncode=int(result["_returncode"]),
                                    output=str(result.get("_output", "")), what="source freshness")
    except DbtDidNotCheck as error:
        _record_dbt_error(s, run_id, "freshness", str(error))
        raise
    return _verdict("freshness", _record(s, run_id, "freshness", results))


def run_tests(group: str, **context: Any) -> dict[str, Any]:
    s = get_settings()
    started = time.time()
    run_id = str(context["run_id"])
    target = s.dbt_artifacts / "quality" / group
    result = run_dbt(s, ["test", "--select", TEST_GROUPS[group]], target_path=target, check=False)
    try:
        results = this_runs_results(target / "run_results.json", started, returncode=int(result["_returncode"]),
                                    output=str(result.get("_output", "")), what=f"test --select {TEST_GROUPS[group]}")
    except DbtDidNotCheck as error:
        _record_dbt_error(s, run_id, group, str(error))
        raise
    return _verdict(group, _record(s, run_id, group, results))


def record_failure_alert(context: dict[str, Any]) -> None:
    """on_failure_callback: keep an alert row; post it to the webhook if one is configured."""
    s = get_settings()
    ti = context.get("task_instance")
    dag_id = str(getattr(ti, "dag_id", "?"))
    task_id = str(getattr(ti, "task_id", "?"))
    run_id = str(context.get("run_id", "?"))
    message = f"{dag_id}.{task_id} failed in run {run_id}: {context.get('exception')}"
    try:
        with psycopg.connect(s.warehouse_dsn, connect_timeout=5) as conn:
            conn.execute(
                "INSERT INTO quality.alerts (dag_id, dag_run_id, task_id, message) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (dag_id, dag_run_id, task_id) DO UPDATE SET message = EXCLUDED.message, "
                "raised_at = now()",
                (dag_id, run_id, task_id, message[:4000]),
            )
    except psycopg.Error as error:
        log.error("could not record the quality alert", error=str(error))
    if s.alert_webhook_url:
        request = urllib.request.Request(s.alert_webhook_url, data=json.dumps({"text": message}).encode(),  # noqa: S310
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310
        except OSError as error:
            log.error("alert webhook failed", url=s.alert_webhook_url, error=str(error))
