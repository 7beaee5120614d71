"""Live status: node health from the probes' facts, latest task per model, bounded probes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from lineage_portal import status, task_status

from streamflow import portal_status
from streamflow.lineage import build_graph

P = "streamflow"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _facts(**overrides):
    facts = {
        "tables": {"bronze.raw_transactions": {"rows": 50_000, "freshest": T0.isoformat(), "age_s": 12.0,
                                               "freshness_column": "ingested_at"},
                   "bronze.raw_fraud_alerts": {"rows": 0, "freshest": None, "age_s": None, "freshness_column": None},
                   "silver.stg_transactions": {"rows": 49_990, "freshest": None, "age_s": None,
                                               "freshness_column": None}},
        "topics": {"transactions.raw": 50_000, "fraud.alerts": 120, "metrics.realtime": None, "dlq.errors": 3},
        "flink": {"transaction_processor": "RUNNING", "fraud_detector": "FAILED", "realtime_aggregator": "unknown"},
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
    assert nodes["flink:fraud_detector"]["health"] == "fail"
    assert nodes["flink:realtime_aggregator"]["health"] == "unknown"
    assert nodes["topic:transactions.raw"]["summary"] == "50,000 msgs"
    assert nodes["topic:metrics.realtime"]["health"] == "unknown"
    assert nodes["producer:generator"]["health"] == "ok"


def test_probe_failures_leave_nodes_unknown(manifest):
    graph = build_graph(manifest)
    nodes = status.node_statuses(graph, {}, dlq_topic="dlq.errors")
    assert {s["health"] for s in nodes.values()} == {"unknown"}


def test_dlq_with_messages_is_a_warning(manifest):
    manifest["sources"][f"source.{P}.bronze.raw_fraud_alerts"]["meta"]["dlq_topic"] = "dlq.errors"
    graph = build_graph(manifest)
    assert "flink:fraud_detector->topic:dlq.errors" in graph.edges
    nodes = status.node_statuses(graph, _facts(), dlq_topic="dlq.errors")
    assert nodes["topic:dlq.errors"]["health"] == "warn"
    assert nodes["topic:dlq.errors"]["summary"] == "3 msgs in DLQ"


def test_collect_reports_a_failing_probe_without_failing(manifest, monkeypatch, tmp_path):
    from streamflow.settings import load_settings

    settings = load_settings(state_dir=tmp_path)
    monkeypatch.setattr(portal_status, "table_stats", lambda s, r: (_ for _ in ()).throw(OSError("pg down")))
    monkeypatch.setattr(portal_status, "topic_messages", lambda s, t: {topic: 1 for topic in t})
    monkeypatch.setattr(portal_status, "flink_job_state", lambda s, job: "RUNNING")
    doc = status.collect(build_graph(manifest), settings, lambda: {})
    assert doc["errors"] == {"tables": "OSError: pg down"}
    assert doc["dlq"] == {"topic": "dlq.errors", "messages": 1}
    assert doc["nodes"]["flink:fraud_detector"]["flink_state"] == "RUNNING"


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


def test_flink_health_mapping():
    assert status.flink_health("RUNNING") == "ok"
    assert status.flink_health("CLUSTER_DOWN") == "fail"
    assert status.flink_health("RESTARTING") == "running"
    assert status.flink_health("NOT_DEPLOYED") == "warn"
    assert status.flink_health("unknown") == "unknown"
