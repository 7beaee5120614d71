"""What bootstrap_pipeline's platform tasks do: preflight, provision, wait for bronze, publish docs,
summarise. Each function is a task callable; none runs at DAG-parse time."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from streamflow import catalog
from streamflow.dbt_runner import run_dbt
from streamflow.kafka_access import KafkaHook
from streamflow.kafka_status import KafkaStatusHook, RecordCount
from streamflow.logs import get_log
from streamflow.run_accounting import BronzeWaitError, RunRange, account_run, measure_run_range, offsets_before
from streamflow.settings import Runtime, Settings, get_settings
from streamflow.topics import ensure_topics
from streamflow.warehouse import apply_migrations

log = get_log("streamflow.pipeline")


class PreflightError(RuntimeError):
    pass


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
    if KafkaHook(s).reachable():
        checks["kafka"] = "ok"
    else:
        problems.append(f"Kafka at {s.kafka_bootstrap} (STREAMFLOW_KAFKA_*): connection refused")
    if s.runtime is Runtime.LOCAL:
        missing = [str(p) for p in (s.venv_python("flink"), s.venv_python("generator"), s.dbt_executable)
                   if not p.exists()]
        if not any((s.jars_dir / "flink").glob("flink-connector-kafka-*.jar")):
            missing.append(str(s.jars_dir / "flink"))
        if not s.flink_functions_jar.is_file():
            missing.append(str(s.flink_functions_jar))
        if shutil.which("java") is None:
            missing.append("java (OpenJDK 17)")
        if missing:
            problems.append(f"local runtime is missing {', '.join(missing)}: run `make setup`")
        else:
            checks["runtime"] = "local ok"
    else:
        try:
            from streamflow.kubernetes_access import DEFAULT_CONN_ID, kubernetes_hook

            hook = kubernetes_hook(s, DEFAULT_CONN_ID)
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


# ---- this run's events: from the generator's offsets to bronze rows (ADR 0010, streamflow.run_accounting) ---
def transactions_offsets_before() -> dict[str, Any]:
    """Runs right before the generator: where ``transactions.raw`` and the DLQ end now."""
    return offsets_before(get_settings())


def transactions_offsets_after(ti: Any) -> dict[str, Any]:
    """Runs right after the generator: the end of its range and how many records it holds."""
    s = get_settings()
    before = ti.xcom_pull(task_ids="transactions_offsets_before")
    if not isinstance(before, dict):
        raise BronzeWaitError("no XCom from transactions_offsets_before: re-run the DAG from that task")
    return measure_run_range(s, before).to_xcom()


def bronze_ready(ti: Any = None) -> bool:
    """The ``wait_for_bronze`` sensor: True once every record of *this run* is in bronze or the DLQ.

    Old rows do not count: a row is this run's only if its Kafka partition/offset lies in the range
    the generator wrote (``transactions_offsets_before`` -> ``transactions_offsets_after``) and it
    was ingested after the run began. Raises :class:`BronzeWaitError` with what is missing once
    ``STREAMFLOW_BRONZE_WAIT_TIMEOUT_S`` has passed.
    """
    s = get_settings()
    pushed = ti.xcom_pull(task_ids="transactions_offsets_after") if ti is not None else None
    if not isinstance(pushed, dict):
        raise BronzeWaitError("no XCom from transactions_offsets_after: this run's range of events is unknown")
    run = RunRange.from_xcom(pushed)
    account = account_run(s, run)
    log.info("waiting for this run's events in bronze", expected=account.expected,
             in_bronze=sum(account.bronze.values()), in_dlq=sum(account.dlq.values()),
             missing=max(0, account.expected - account.accounted))
    if account.complete:
        return True
    started = getattr(ti, "start_date", None)
    waited = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    if waited >= s.bronze_wait_timeout_s:
        from streamflow.runtime.health import job_health

        health = job_health("transaction_processor", s)
        raise BronzeWaitError(
            f"after {waited:.0f} s, {account.expected - account.accounted} of this run's {account.expected} "
            f"events (offsets {run.start} -> {run.end} of {run.topic}) are neither in bronze.raw_transactions "
            f"nor in {run.dlq_topic}: {account.missing_text()}. transaction_processor: {health.reason}. "
            "Check its consumer-group lag and task log, then re-run bootstrap_pipeline "
            "(STREAMFLOW_BRONZE_WAIT_TIMEOUT_S sets this wait)")
    return False


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


#: Seconds the summary may spend reading the DLQ; beyond it the figure is a lower bound, said so.
SUMMARY_DLQ_BUDGET_S = 60.0


def dlq_count(settings: Settings, budget_s: float = SUMMARY_DLQ_BUDGET_S) -> RecordCount:
    """The DLQ's committed records, as a ``read_committed`` consumer receives them.

    Not end offsets: the DLQ sink is transactional, so aborted transactions and commit markers take
    offsets that no consumer can read (issue 17 counted 234 "messages" of that kind). Counted by
    :class:`streamflow.kafka_status.KafkaStatusHook`, the same code as the portal's DLQ figure."""
    return KafkaStatusHook(settings).count_committed_records(settings.topic_dlq, budget_s=budget_s)


#: {layer: tables}: bronze sources, silver and gold models, read from the dbt manifest when first used.
LAYER_TABLES = catalog.LAYER_TABLES


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


def run_summary(settings: Settings, started: datetime | None = None) -> dict[str, Any]:
    """Row counts per layer, alerts, the DLQ's committed records and the run's duration.

    ``dlq_messages`` is what a ``read_committed`` consumer of the DLQ receives (a lower bound when
    ``dlq_complete`` is false: the count ran out of its budget); ``dlq_offsets`` is the topic's span of
    offsets, kept only to show the difference (aborted transactions and markers)."""
    counts = row_counts(settings)
    duration = (datetime.now(UTC) - started).total_seconds() if started else None
    dlq = dlq_count(settings)
    summary = {
        "rows": counts,
        "alerts": counts["bronze"].get("raw_fraud_alerts"),
        "dlq_messages": dlq.records,
        "dlq_complete": dlq.complete,
        "dlq_offsets": dlq.offsets,
        "run_seconds": round(duration, 1) if duration is not None else None,
        "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    for schema, tables in counts.items():
        for table, count in tables.items():
            print(f"  {schema}.{table:<22} {count if count is not None else '(missing)'}", flush=True)
    dlq_text = f"{dlq.records}" if dlq.complete else f">={dlq.records} (count stopped after {dlq.seconds:.0f} s)"
    print(f"  alerts={summary['alerts']} dlq={dlq_text} committed records (topic spans {dlq.offsets} offsets) "
          f"run_seconds={summary['run_seconds']}", flush=True)
    return summary


def summarize(**context: Any) -> dict[str, Any]:
    """The ``summary`` task: :func:`run_summary` for this DAG run (task log + XCom)."""
    dag_run = context.get("dag_run")
    return run_summary(get_settings(), getattr(dag_run, "start_date", None))
