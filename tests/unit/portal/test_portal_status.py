"""Live status: node health from the probes' facts (Flink job health, committed DLQ records, lag),
latest task per model, the dbt_quality runs, bounded probes."""

from __future__ import annotations

import ast
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lineage_portal import status, task_status

from streamflow import portal_status
from streamflow.flink_health import RECOVERING_STATES, TERMINAL_STATES, JobHealth
from streamflow.lineage import build_graph

FLINK_STATES = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "FAILED", "CANCELLING", "CANCELED",
                "FINISHED", "SUSPENDED", "RECONCILING", "NOT_DEPLOYED", "CLUSTER_DOWN", "UNKNOWN"}

P = "streamflow"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _job(job: str, state: str, *, healthy: bool = False, restarts: int | None = 0, reason: str = "",
         last_exception: str | None = None, **extra) -> dict:
    """A JobHealth as the probe delivers it (``dataclasses.asdict`` of streamflow.flink_health.JobHealth)."""
    fields = {"last_checkpoint_at": None, "running_since": None, **extra}
    return asdict(JobHealth(job=job, state=state, restarts=restarts, last_exception=last_exception, healthy=healthy,
                            reason=reason or ("ok" if healthy else f"{job} is {state}"), **fields))


def _facts(**overrides):
    facts = {
        "tables": {"bronze.raw_transactions": {"rows": 50_000, "freshest": T0.isoformat(), "age_s": 12.0,
                                               "freshness_column": "ingested_at"},
                   "bronze.raw_fraud_alerts": {"rows": 0, "freshest": None, "age_s": None, "freshness_column": None},
                   "silver.stg_transactions": {"rows": 49_990, "freshest": None, "age_s": None,
                                               "freshness_column": None}},
        "topics": {"transactions.raw": 50_000, "fraud.alerts": 120, "metrics.realtime": None},
        "dlq": {"topic": "dlq.errors", "records": 3, "complete": True, "offsets": 237, "seconds": 0.1},
        "flink": {"transaction_processor": _job("transaction_processor", "RUNNING", healthy=True),
                  "fraud_detector": _job("fraud_detector", "FAILED", final=True),
                  "realtime_aggregator": None},
        "lag": {"transaction_processor": {"group": "streamflow-transaction-processor", "lag": 1234,
                                          "partitions": {}, "topics": ["transactions.raw"]}},
        "tasks": {"stg_transactions": {"state": "success", "url": "dags/x/runs/r/tasks/t"},
                  "fct_transactions": {"state": "failed", "url": "dags/x/runs/r/tasks/u"},
                  "dim_store": {"state": "running", "url": "dags/x/runs/r/tasks/v"}},
    }
    facts.update(overrides)
    return facts


def test_node_health_from_facts(manifest):
    graph = build_graph(manifest)
    nodes = status.node_statuses(graph, _facts(), dlq_topic="dlq.errors")
    assert set(nodes) == set(graph.nodes)
    assert nodes[f"source.{P}.bronze.raw_transactions"]["health"] == "ok"
    assert nodes[f"source.{P}.bronze.raw_transactions"]["rows"] == 50_000
    assert nodes[f"source.{P}.bronze.raw_fraud_alerts"]["health"] == "warn"  # empty table
    assert nodes[f"model.{P}.stg_transactions"]["health"] == "ok"
    assert nodes[f"model.{P}.stg_transactions"]["summary"] == "success · 49,990 rows"
    assert nodes[f"model.{P}.fct_transactions"]["health"] == "fail"
    assert nodes[f"model.{P}.dim_store"]["health"] == "running"
    assert nodes[f"model.{P}.agg_daily_fraud"]["health"] == "unknown"  # never ran
    assert nodes["flink:transaction_processor"]["health"] == "ok"
    assert nodes["flink:transaction_processor"]["summary"] == "RUNNING · lag 1,234"
    assert nodes["flink:transaction_processor"]["lag"]["group"] == "streamflow-transaction-processor"
    assert nodes["flink:fraud_detector"]["health"] == "fail"
    assert nodes["flink:realtime_aggregator"]["health"] == "unknown"
    assert nodes["topic:transactions.raw"]["summary"] == "50,000 offsets"
    assert nodes["topic:metrics.realtime"]["health"] == "unknown"
    assert nodes["producer:generator"]["health"] == "ok"


def test_restart_loop_is_red_with_its_restarts_and_exception(manifest):
    """The bug: transaction_processor in a restart loop was drawn with the *running* colour."""
    graph = build_graph(manifest)
    looping = _job("transaction_processor", "RESTARTING", restarts=7,
                   last_exception="org.postgresql.util.PSQLException: Connection refused")
    nodes = status.node_statuses(graph, _facts(flink={"transaction_processor": looping}), dlq_topic="dlq.errors")
    node = nodes["flink:transaction_processor"]
    assert node["health"] == "fail"
    assert node["summary"].startswith("RESTARTING · 7 restarts")
    assert node["job"]["restarts"] == 7
    assert node["job"]["last_exception"] == "org.postgresql.util.PSQLException: Connection refused"
    # Between two failures the loop passes through RUNNING: still red, not "running".
    between = _job("transaction_processor", "RUNNING", restarts=7, reason="restarted 3 s ago")
    assert status.flink_health(between) == "fail"


@pytest.mark.parametrize(("health", "colour"), [
    (None, "unknown"),
    (_job("j", "UNKNOWN", restarts=None), "unknown"),
    (_job("j", "RUNNING", healthy=True), "ok"),
    (_job("j", "RUNNING", healthy=True, restarts=2), "ok"),  # restarted long ago, stable since
    (_job("j", "RESTARTING"), "fail"),
    (_job("j", "FAILING"), "fail"),
    (_job("j", "FAILED", final=True), "fail"),
    (_job("j", "CLUSTER_DOWN", restarts=None, final=True), "fail"),
    (_job("j", "NOT_DEPLOYED", restarts=None), "warn"),
    (_job("j", "RUNNING"), "running"),  # just (re)deployed, inside its stable window
    (_job("j", "INITIALIZING"), "running"),
])
def test_flink_health_mapping(health, colour):
    assert status.flink_health(health) == colour


def test_running_without_checkpoint_for_many_windows_is_stuck_not_starting():
    started = 1_000_000.0
    young = _job("j", "RUNNING", running_since=started, checked_at=started + 30, stable_window_s=20.0)
    stuck = _job("j", "RUNNING", running_since=started, checked_at=started + 600, stable_window_s=20.0)
    assert status.flink_health(young) == "running"
    assert status.flink_health(stuck) == "fail"


@given(state=st.sampled_from(sorted(FLINK_STATES)), restarts=st.one_of(st.none(), st.integers(0, 50)),
       healthy=st.booleans(), final=st.booleans())
def test_only_a_healthy_reading_is_green(state, restarts, healthy, final):
    """Property: whatever Flink says, the node is ok only when JobHealth.healthy; a restarting,
    failing or unobservable job is never ok, and a recovering one is always red."""
    health = _job("j", state, healthy=healthy, restarts=restarts, final=final)
    colour = status.flink_health(health)
    assert (colour == "ok") == healthy
    if not healthy and state in RECOVERING_STATES | TERMINAL_STATES:
        assert colour == "fail"
    if state == "UNKNOWN" and not healthy:
        assert colour == "unknown"
    if not healthy and restarts:
        assert colour in {"fail", "unknown"}


def test_probe_failures_leave_nodes_unknown(manifest):
    graph = build_graph(manifest)
    nodes = status.node_statuses(graph, {}, dlq_topic="dlq.errors")
    assert {s["health"] for s in nodes.values()} == {"unknown"}


def test_dlq_node_counts_committed_records_not_offsets(manifest):
    manifest["sources"][f"source.{P}.bronze.raw_fraud_alerts"]["meta"]["dlq_topic"] = "dlq.errors"
    graph = build_graph(manifest)
    assert "flink:fraud_detector->topic:dlq.errors" in graph.edges
    nodes = status.node_statuses(graph, _facts(), dlq_topic="dlq.errors")
    assert nodes["topic:dlq.errors"]["health"] == "warn"
    assert nodes["topic:dlq.errors"]["summary"] == "3 msgs in DLQ"
    assert nodes["topic:dlq.errors"]["messages"] == 3 and nodes["topic:dlq.errors"]["offsets"] == 237
    only_aborted = {"topic": "dlq.errors", "records": 0, "complete": True, "offsets": 234, "seconds": 0.1}
    nodes = status.node_statuses(graph, _facts(dlq=only_aborted), dlq_topic="dlq.errors")
    assert nodes["topic:dlq.errors"]["health"] == "ok"
    assert nodes["topic:dlq.errors"]["summary"] == "0 msgs in DLQ"
    partial = {"topic": "dlq.errors", "records": 0, "complete": False, "offsets": 900_000, "seconds": 5.0}
    nodes = status.node_statuses(graph, _facts(dlq=partial), dlq_topic="dlq.errors")
    assert nodes["topic:dlq.errors"]["health"] == "unknown"  # nothing read yet is not "empty"
    assert nodes["topic:dlq.errors"]["messages"] is None


def test_collect_reports_committed_dlq_records_and_job_health(manifest, monkeypatch, tmp_path):
    from streamflow.settings import load_settings

    settings = load_settings(state_dir=tmp_path, install_dir=tmp_path)
    monkeypatch.setattr(portal_status, "table_stats", lambda s, r: (_ for _ in ()).throw(OSError("pg down")))
    monkeypatch.setattr(portal_status, "topic_offsets", lambda s, t: {topic: 1 for topic in t})
    # 234 offsets, none readable: the records of aborted transactions (the page used to say 234).
    monkeypatch.setattr(portal_status, "dlq_records", lambda s: {"topic": "dlq.errors", "records": 0,
                                                                 "complete": True, "offsets": 234, "seconds": 0.2})
    monkeypatch.setattr(portal_status, "flink_health", lambda s, jobs: {
        job: _job(job, "RESTARTING", restarts=4) for job in jobs})
    monkeypatch.setattr(portal_status, "consumer_lags", lambda s, jobs: {job: None for job in jobs})
    monkeypatch.setattr(portal_status, "sink_rejects", lambda s: _rejects(0))
    doc = status.collect(build_graph(manifest), settings, lambda: {})
    assert doc["errors"] == {"tables": "OSError: pg down"}
    assert doc["dlq"]["messages"] == 0 and doc["dlq"]["offsets"] == 234 and doc["dlq"]["complete"] is True
    assert doc["nodes"]["flink:fraud_detector"]["flink_state"] == "RESTARTING"
    assert doc["nodes"]["flink:fraud_detector"]["health"] == "fail"
    assert doc["jobs"]["transaction_processor"] == {"health": "fail", "summary": "RESTARTING · 4 restarts"}



def _rejects(rows: int, **by_table: int) -> dict:
    """``portal_status.sink_rejects`` as the probe returns it."""
    tables = by_table or ({"bronze.raw_transactions": rows} if rows else {})
    return {"relation": "bronze.sink_rejects", "rows": rows, "by_table": tables,
            "newest": T0.isoformat() if rows else None, "age_s": 60.0 if rows else None,
            "sqlstates": ["22P02"] if rows else []}


def _with_sink_rejects_source(manifest: dict) -> dict:
    """The manifest with dbt's bronze_rejects.sink_rejects source (dbt/models/staging/bronze/_bronze__sources.yml)."""
    uid = f"source.{P}.bronze_rejects.sink_rejects"
    template = manifest["sources"][f"source.{P}.bronze.raw_transactions"]
    manifest["sources"][uid] = {**template, "unique_id": uid, "name": "sink_rejects", "source_name": "bronze_rejects",
                                "identifier": "sink_rejects", "schema": "bronze", "meta": {}, "config": {}}
    return manifest


def test_sink_rejects_node_is_red_when_a_sink_refused_rows(manifest):
    graph = build_graph(_with_sink_rejects_source(manifest))
    uid = f"source.{P}.bronze_rejects.sink_rejects"
    assert graph.nodes[uid].relation == portal_status.SINK_REJECTS_RELATION
    # table_stats' generic rule (a source with rows is ok, an empty one warn) must not apply to it.
    tables = {**_facts()["tables"], "bronze.sink_rejects": {"rows": 2, "freshest": None, "age_s": None,
                                                            "freshness_column": None}}
    refused = status.node_statuses(graph, _facts(tables=tables, sink_rejects=_rejects(
        2, **{"bronze.raw_transactions": 1, "bronze.raw_fraud_alerts": 1})), dlq_topic="dlq.errors")[uid]
    assert refused["health"] == "fail" and refused["summary"] == "2 rejected rows" and refused["rows"] == 2
    assert refused["rejects_by_table"] == {"bronze.raw_transactions": 1, "bronze.raw_fraud_alerts": 1}
    empty = status.node_statuses(graph, _facts(tables=tables, sink_rejects=_rejects(0)), dlq_topic="dlq.errors")[uid]
    assert empty["health"] == "ok" and empty["summary"] == "0 rejected rows"  # empty is the healthy state
    unknown = status.node_statuses(graph, _facts(tables=tables), dlq_topic="dlq.errors")[uid]
    assert unknown["health"] == "unknown" and unknown["rejects"] is None  # no reading is never "0"
    # Every other bronze source keeps the generic rule.
    nodes = status.node_statuses(graph, _facts(sink_rejects=_rejects(2)), dlq_topic="dlq.errors")
    assert nodes[f"source.{P}.bronze.raw_fraud_alerts"]["health"] == "warn"


@pytest.mark.parametrize(("probe", "rows", "health", "error"), [
    (lambda s: _rejects(3), 3, "fail", None),
    (lambda s: _rejects(0), 0, "ok", None),
    (lambda s: None, None, "unknown", None),  # table missing: migrations not applied
    (lambda s: (_ for _ in ()).throw(OSError("pg down")), None, "unknown", "OSError: pg down"),
])
def test_collect_reports_the_sink_rejects_figure_beside_the_dlq(manifest, monkeypatch, tmp_path, probe, rows, health,
                                                                error):
    from streamflow.settings import load_settings

    settings = load_settings(state_dir=tmp_path, install_dir=tmp_path)
    asked: list[list[str]] = []
    monkeypatch.setattr(portal_status, "table_stats", lambda s, r: asked.append(sorted(r)) or {})
    monkeypatch.setattr(portal_status, "topic_offsets", lambda s, t: {})
    monkeypatch.setattr(portal_status, "dlq_records", lambda s: {"topic": "dlq.errors", "records": 0,
                                                                 "complete": True, "offsets": 0, "seconds": 0.1})
    monkeypatch.setattr(portal_status, "flink_health", lambda s, jobs: {})
    monkeypatch.setattr(portal_status, "consumer_lags", lambda s, jobs: {})
    monkeypatch.setattr(portal_status, "sink_rejects", probe)
    graph = build_graph(_with_sink_rejects_source(manifest))
    doc = status.collect(graph, settings, lambda: {})
    assert doc["sink_rejects"]["rows"] == rows and doc["sink_rejects"]["health"] == health
    assert doc["sink_rejects"]["relation"] == "bronze.sink_rejects"
    assert doc["nodes"][f"source.{P}.bronze_rejects.sink_rejects"]["health"] == health
    assert doc["errors"].get("sink_rejects") == error
    assert "bronze.sink_rejects" not in asked[0]  # counted once, by its own probe

def test_flink_probe_turns_errors_into_unknown(monkeypatch, tmp_path):
    from streamflow.runtime import health
    from streamflow.settings import load_settings

    def broken(job, settings):
        raise RuntimeError("REST hung")

    monkeypatch.setattr(health, "job_health", broken)
    settings = load_settings(state_dir=tmp_path, install_dir=tmp_path)
    result = portal_status.flink_health(settings, ["transaction_processor"])
    assert result == {"transaction_processor": None}
    assert status.flink_health(result["transaction_processor"]) == "unknown"


def test_status_code_does_not_import_the_dag_task_callables():
    """Issue 16: the portal read two numbers through streamflow.pipeline (bootstrap's task callables)."""
    sources = [Path(portal_status.__file__), *Path(status.__file__).parent.glob("*.py")]
    for path in sources:
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "streamflow.pipeline" not in imported, path


def test_gather_bounds_slow_probes():
    started = time.monotonic()
    results, errors = portal_status.gather({"fast": lambda: 1, "slow": lambda: time.sleep(3)}, timeout_s=0.5)
    assert results == {"fast": 1}
    assert errors["slow"].startswith("timed out")
    assert time.monotonic() - started < 2.5


def test_status_cache_reuses_within_ttl():
    cache = status.StatusCache(ttl_s=60)
    calls = []
    first = cache.get("k", lambda: calls.append(1) or {"n": len(calls)})
    second = cache.get("k", lambda: calls.append(1) or {"n": len(calls)})
    third = cache.get("other", lambda: calls.append(1) or {"n": len(calls)})
    assert first is second and third == {"n": 2}


def test_pick_latest_task_per_model():
    def row(task_id, state, minutes, dag_id="dbt_transform", run_id="r1"):
        end = T0 + timedelta(minutes=minutes) if minutes is not None else None
        return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "state": state, "start_date": end,
                "end_date": end, "try_number": 1}

    rows = [
        row("dbt_staging.stg_transactions_model_build", "failed", 1, "bootstrap_pipeline", "manual__1"),
        row("dbt_staging.stg_transactions_model_build", "success", 30, "dbt_transform", "scheduled__2"),
        row("dbt_marts.fct_transactions_model_build", None, None),
        row("preflight", "success", 40),
    ]
    latest = task_status.pick_latest(rows)
    assert set(latest) == {"stg_transactions", "fct_transactions"}
    assert latest["stg_transactions"]["state"] == "success"
    assert latest["stg_transactions"]["url"] == (
        "dags/dbt_transform/runs/scheduled__2/tasks/dbt_staging.stg_transactions_model_build")
    assert latest["fct_transactions"]["state"] == "none"


def test_task_url_keeps_run_id_readable_for_airflows_router():
    url = task_status.task_url("dbt_transform", "scheduled__2026-11-22T08:00:00+00:00", "dbt_marts.x_model_build")
    assert url == "dags/dbt_transform/runs/scheduled__2026-11-22T08:00:00+00:00/tasks/dbt_marts.x_model_build"
    assert task_status.task_url("d", "manual run/1?#", "t") == "dags/d/runs/manual%20run%2F1%3F%23/tasks/t"


def _run(run_id="scheduled__1", state="success"):
    return {"dag_id": "dbt_quality", "run_id": run_id, "state": state, "run_type": "scheduled",
            "run_after": T0, "start_date": T0, "end_date": T0 + timedelta(minutes=1)}


def test_quality_run_skipped_because_never_bootstrapped_is_said_in_words():
    skipped = task_status.describe_run(_run(), {"pipeline_bootstrapped": "success", "source_freshness": "skipped",
                                                "test_staging": "skipped", "test_marts": "skipped"})
    assert skipped["verdict"] == "skipped" and "never bootstrapped" in skipped["note"]
    assert skipped["url"] == "dags/dbt_quality/runs/scheduled__1"
    ran = task_status.describe_run(_run(state="failed"), {"pipeline_bootstrapped": "success",
                                                          "source_freshness": "failed", "test_staging": "success"})
    assert ran["verdict"] == "failed" and ran["note"] == "failed: source_freshness"
    gate_failed = task_status.describe_run(_run(state="failed"), {"pipeline_bootstrapped": "failed",
                                                                  "source_freshness": "upstream_failed"})
    assert gate_failed["note"].startswith("pipeline_bootstrapped failed")
