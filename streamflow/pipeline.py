"""What bootstrap_pipeline's platform tasks do: preflight, provision, wait for bronze, publish docs,
summarise. Each function is a task callable; none runs at DAG-parse time."""

from __future__ import annotations

import shutil
import socket
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from streamflow.dbt_runner import run_dbt
from streamflow.logs import get_log
from streamflow.settings import Runtime, Settings, get_settings
from streamflow.topics import ensure_topics
from streamflow.warehouse import apply_migrations

log = get_log("streamflow.pipeline")


class PreflightError(RuntimeError):
    pass


def _tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def preflight() -> dict[str, str]:
    """Reach Postgres, Kafka and the runtime; fail fast naming everything that is missing."""
    s = get_settings()
    problems: list[str] = []
    checks: dict[str, str] = {}
    try:
        with psycopg.connect(s.warehouse_dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except psycopg.Error as error:
        problems.append(f"PostgreSQL at {s.postgres_host}:{s.postgres_port} (STREAMFLOW_POSTGRES_*): {error}")
    host, _, port = s.kafka_bootstrap.split(",")[0].rpartition(":")
    if _tcp(host, int(port)):
        checks["kafka"] = "ok"
    else:
        problems.append(f"Kafka at {s.kafka_bootstrap} (STREAMFLOW_KAFKA_*): connection refused")
    if s.runtime is Runtime.LOCAL:
        missing = [str(p) for p in (s.venv_python("flink"), s.venv_python("generator"), s.dbt_executable)
                   if not p.exists()]
        if not any((s.jars_dir / "flink").glob("flink-connector-kafka-*.jar")):
            missing.append(str(s.jars_dir / "flink"))
        if shutil.which("java") is None:
            missing.append("java (OpenJDK 17)")
        if missing:
            problems.append(f"local runtime is missing {', '.join(missing)}: run `make setup`")
        else:
            checks["runtime"] = "local ok"
    else:
        try:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            hook = KubernetesHook(in_cluster=s.k8s_in_cluster, config_file=s.k8s_config_file or None)
            hook.core_v1_client.read_namespace(s.k8s_namespace_processing)
            checks["runtime"] = f"kubernetes ok ({s.k8s_namespace_processing})"
        except Exception as error:
            problems.append(f"Kubernetes API / namespace {s.k8s_namespace_processing}: {error}")
    if problems:
        raise PreflightError("preflight failed:\n  - " + "\n  - ".join(problems))
    log.info("preflight ok", **checks)
    return checks


def provision() -> dict[str, Any]:
    """Kafka topics + bronze migrations, both idempotent."""
    s = get_settings()
    topics = ensure_topics(s)
    migrations = apply_migrations(s)
    return {"topics": topics, "migrations_applied": migrations}


def bronze_count(settings: Settings) -> tuple[int, float | None]:
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM now() - max(ingested_at)) FROM bronze.raw_transactions"
        ).fetchone()
    assert row is not None
    return int(row[0]), (float(row[1]) if row[1] is not None else None)


def bronze_ready(expected: int | None = None, quiet_s: float = 5.0) -> bool:
    """True once bronze holds the bounded run's events and ingestion has been quiet for ``quiet_s``."""
    s = get_settings()
    want = expected if expected is not None else s.generator_events
    count, idle = bronze_count(s)
    log.info("waiting for bronze", rows=count, expected=want, idle_s=f"{idle:.1f}" if idle is not None else "-")
    return count >= want and idle is not None and idle >= quiet_s


def publish_docs() -> dict[str, str]:
    """`dbt docs generate` and publish index/manifest/catalog where the lineage portal reads them."""
    s = get_settings()
    work = s.dbt_artifacts / "docs-build"
    run_dbt(s, ["docs", "generate"], target_path=work)
    s.dbt_docs_dir.mkdir(parents=True, exist_ok=True)
    published = {}
    for name in ("index.html", "manifest.json", "catalog.json"):
        src = work / name
        if src.exists():
            tmp = s.dbt_docs_dir / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            tmp.replace(s.dbt_docs_dir / name)  # atomic: the portal never serves a half-written file
            published[name] = str(s.dbt_docs_dir / name)
    return published


def topic_message_count(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "streamflow-summary",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        total = 0
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


LAYER_TABLES = {
    "bronze": ["raw_transactions", "raw_fraud_alerts", "realtime_metrics"],
    "silver": ["stg_transactions", "stg_fraud_alerts", "int_customer_stats"],
    "gold": ["dim_customer", "dim_store", "fct_transactions", "fct_fraud_alerts", "agg_hourly_sales",
             "agg_daily_fraud"],
}


def row_counts(settings: Settings) -> dict[str, dict[str, int | None]]:
    counts: dict[str, dict[str, int | None]] = {}
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        for schema, tables in LAYER_TABLES.items():
            counts[schema] = {}
            for table in tables:
                exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
                if not exists or exists[0] is None:
                    counts[schema][table] = None
                    continue
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table))
                row = conn.execute(query).fetchone()
                counts[schema][table] = int(row[0]) if row else 0
    return counts


def summarize(**context: Any) -> dict[str, Any]:
    """Row counts per layer, alerts, DLQ size and the run's duration: task log + XCom."""
    s = get_settings()
    counts = row_counts(s)
    dag_run = context.get("dag_run")
    started = getattr(dag_run, "start_date", None)
    duration = (datetime.now(UTC) - started).total_seconds() if started else None
    summary = {
        "rows": counts,
        "alerts": counts["bronze"].get("raw_fraud_alerts"),
        "dlq_messages": topic_message_count(s, s.topic_dlq),
        "run_seconds": round(duration, 1) if duration is not None else None,
        "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    for schema, tables in counts.items():
        for table, count in tables.items():
            print(f"  {schema}.{table:<22} {count if count is not None else '(missing)'}", flush=True)
    print(f"  alerts={summary['alerts']} dlq={summary['dlq_messages']} run_seconds={summary['run_seconds']}",
          flush=True)
    return summary
