"""streamflow.lineage: the end-to-end graph is derived from the manifest and the sources' meta."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from streamflow.catalog import ManifestNotFound, manifest_path, topic_renames
from streamflow.lineage import build_graph, dbt_name_from_task_id, task_step
from streamflow.settings import load_settings

P = "streamflow"


def test_streaming_path_comes_from_source_meta(manifest):
    graph = build_graph(manifest)
    chain = ["producer:generator", "topic:transactions.raw", "flink:transaction_processor",
             f"source.{P}.bronze.raw_transactions", f"model.{P}.stg_transactions", f"model.{P}.fct_transactions",
             f"exposure.{P}.lineage_portal"]
    for upstream, downstream in itertools.pairwise(chain):
        assert f"{upstream}->{downstream}" in graph.edges, f"missing edge {upstream} -> {downstream}"


def test_one_topic_feeds_every_job_and_output_topics_hang_off_their_job(manifest):
    graph = build_graph(manifest)
    topics = {n.label for n in graph.nodes_of_kind("topic")}
    assert topics == {"transactions.raw", "fraud.alerts", "metrics.realtime"}
    for job in ("transaction_processor", "fraud_detector", "realtime_aggregator"):
        assert f"topic:transactions.raw->flink:{job}" in graph.edges
    assert "flink:fraud_detector->topic:fraud.alerts" in graph.edges
    assert "flink:realtime_aggregator->topic:metrics.realtime" in graph.edges
    assert "flink:realtime_aggregator->source.streamflow.bronze.realtime_metrics" in graph.edges


def test_layers_kinds_and_docs_anchors(manifest):
    graph = build_graph(manifest)
    layer = {n.label: n.layer for n in graph.nodes.values()}
    assert layer["raw_transactions"] == "bronze"
    assert layer["stg_transactions"] == layer["int_customer_stats"] == "silver"
    assert layer["fct_transactions"] == layer["agg_daily_fraud"] == "gold"
    assert layer["Lineage portal"] == "consumer"
    model = graph.nodes[f"model.{P}.stg_transactions"]
    assert model.docs_anchor == f"#!/model/model.{P}.stg_transactions"
    assert model.relation == "silver.stg_transactions"
    assert model.materialized == "incremental"
    source = graph.nodes[f"source.{P}.bronze.raw_transactions"]
    assert source.docs_anchor == f"#!/source/source.{P}.bronze.raw_transactions"
    assert source.relation == "bronze.raw_transactions"
    assert source.meta["flink_job"] == "transaction_processor"


def test_tests_and_other_packages_are_left_out(manifest):
    graph = build_graph(manifest)
    assert not [n for n in graph.nodes if n.startswith("test.")]
    assert "model.other_pkg.helper" not in graph.nodes
    # 1 producer + 3 topics + 3 jobs + 3 sources + 9 models + 2 exposures
    assert len(graph.nodes) == 21
    assert all(e.source in graph.nodes and e.target in graph.nodes for e in graph.edges.values())


def test_graph_json_shape(manifest):
    doc = build_graph(manifest).to_json()
    assert doc["project"] == P
    assert {"id", "label", "kind", "layer", "docs_anchor"} <= set(doc["nodes"][0])
    assert {"id", "source", "target"} == set(doc["edges"][0])


def test_source_without_flink_job_links_topic_straight_to_table(manifest):
    manifest["sources"][f"source.{P}.bronze.raw_transactions"]["meta"] = {"kafka_topic": "t.direct"}
    manifest["sources"][f"source.{P}.bronze.raw_transactions"]["config"]["meta"] = {}
    graph = build_graph(manifest)
    assert f"topic:t.direct->source.{P}.bronze.raw_transactions" in graph.edges


@pytest.mark.parametrize(("task_id", "name", "step"), [
    ("dbt_staging.stg_transactions_model_build", "stg_transactions", "build"),
    ("dbt_marts.fct_fraud_alerts_model_build", "fct_fraud_alerts", "build"),
    ("dbt_marts.dim_store_run", "dim_store", "run"),
    ("dbt_marts.dim_store.test", "dim_store", "test"),
    ("dbt_staging.stg_transactions.run", "stg_transactions", "run"),
    ("agg_hourly_sales_run", "agg_hourly_sales", "run"),
])
def test_cosmos_task_ids_map_back_to_models(task_id, name, step):
    assert dbt_name_from_task_id(task_id) == name
    assert task_step(task_id) == step


@pytest.mark.parametrize("task_id", ["preflight", "summary", "publish_dbt_docs", "deploy_fraud_detector"])
def test_platform_tasks_are_not_models(task_id):
    assert dbt_name_from_task_id(task_id) is None


def test_manifest_path_prefers_the_newest(tmp_path: Path):
    settings = load_settings(state_dir=tmp_path, install_dir=tmp_path, dbt_artifacts_dir=str(tmp_path / "dbt"))
    with pytest.raises(ManifestNotFound, match="streamflow prepare"):
        manifest_path(settings)
    target = settings.dbt_target_dir / "manifest.json"
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    assert manifest_path(settings) == target
    docs = settings.dbt_docs_dir / "manifest.json"
    docs.parent.mkdir(parents=True)
    docs.write_text("{}")
    later = time.time() + 5
    os.utime(docs, (later, later))
    assert manifest_path(settings) == docs


def test_the_graph_draws_the_topics_the_settings_name(manifest, tmp_path):
    """The source meta holds the written names; a stack that renames its topics sees its own names (and no
    written one), wired the same way."""
    settings = load_settings(state_dir=tmp_path, postgres_password="x", topic_transactions="a.tx",
                             topic_alerts="b.alerts", topic_metrics="c.metrics", topic_dlq="d.dlq")
    graph = build_graph(manifest, topic_renames(settings))
    assert {n.label for n in graph.nodes_of_kind("topic")} == {"a.tx", "b.alerts", "c.metrics"}
    assert "producer:generator->topic:a.tx" in graph.edges
    assert "flink:fraud_detector->topic:b.alerts" in graph.edges
    for job in ("transaction_processor", "fraud_detector", "realtime_aggregator"):
        assert f"topic:a.tx->flink:{job}" in graph.edges
