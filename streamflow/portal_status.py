"""Live facts the lineage portal puts on the graph: rows and freshness per table, offsets per Kafka
topic, the DLQ's committed records, the rows a bronze sink refused, each Flink job's health and
consumer lag, and the dbt_quality history.

Every probe is defensive: the portal is a status page, so a service that is down shows as
``unknown`` with the reason instead of failing the page. Nothing here imports Airflow or the DAGs'
task callables (the Airflow task states are read by the plugin itself, inside the api-server); Kafka
is read through :mod:`streamflow.kafka_status`, Flink through :mod:`streamflow.flink_health`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.portal_status")

T = TypeVar("T")

# Columns that say when a row arrived, best first (bronze: ingest time; marts: event time).
FRESHNESS_COLUMNS = ("ingested_at", "detected_at", "updated_at", "loaded_at", "event_time", "window_end",
                     "transaction_time", "hour", "day", "date")
UNKNOWN = "unknown"
#: Seconds the DLQ count may read per status round; beyond it the page shows a lower bound.
DLQ_COUNT_BUDGET_S = 5.0
#: Rows a bronze sink refused (streamflow/migrations/V012__sink_inboxes.sql): the DLQ of the database side.
SINK_REJECTS_RELATION = "bronze.sink_rejects"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def table_stats(settings: Settings, relations: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{"schema.table": {"rows", "freshest", "freshness_column", "age_s"}}`` for existing tables.

    Every relation the graph names is counted the same way, so a new model needs no code change.
    Freshness is max() of the first timestamp column in FRESHNESS_COLUMNS the table has.
    """
    import psycopg
    from psycopg import sql

    wanted = sorted({r for r in relations if r and "." in r})
    stats: dict[str, dict[str, Any]] = {}
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        conn.execute("SET statement_timeout = '5s'")
        for relation in wanted:
            schema, table = relation.split(".", 1)
            exists = conn.execute("SELECT to_regclass(%s)", (relation,)).fetchone()
            if not exists or exists[0] is None:
                continue  # not built yet: the node shows no count rather than an error
            cols = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "AND data_type IN ('timestamp with time zone', 'timestamp without time zone', 'date')",
                (schema, table),
            ).fetchall()
            ident = sql.Identifier(schema, table)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            entry: dict[str, Any] = {"rows": int(row[0]) if row else 0, "freshest": None,
                                     "freshness_column": None, "age_s": None}
            names = {c[0] for c in cols}
            column = next((c for c in FRESHNESS_COLUMNS if c in names), None) or (sorted(names)[0] if names else None)
            if column:
                row = conn.execute(
                    sql.SQL("SELECT max({c}), extract(epoch FROM now() - max({c})::timestamptz) FROM {t}").format(
                        c=sql.Identifier(column), t=ident)
                ).fetchone()
                if row:
                    entry.update(freshest=_iso(row[0]), freshness_column=column,
                                 age_s=round(float(row[1]), 1) if row[1] is not None else None)
            stats[relation] = entry
    return stats


def topic_offsets(settings: Settings, topics: Iterable[str]) -> dict[str, int | None]:
    """Offsets spanned per topic (sum of high - low watermarks), None where Kafka could not say.

    An upper bound on the records a topic holds, not a count: transactional sinks leave aborted
    records and markers behind (the page labels it "offsets"; the DLQ is counted by
    :func:`dlq_records`)."""
    from streamflow.kafka_status import KafkaStatusHook

    hook = KafkaStatusHook(settings, timeout_s=5.0)
    result: dict[str, int | None] = {}
    for topic in topics:
        try:
            result[topic] = sum(high - low for low, high in hook.watermarks(topic).values())
        except Exception as error:  # unknown topic, broker down: the page shows "unknown"
            log.warning("topic offsets unknown", topic=topic, error=str(error))
            result[topic] = None
    return result


def dlq_records(settings: Settings, budget_s: float = DLQ_COUNT_BUDGET_S) -> dict[str, Any]:
    """The DLQ's committed records, counted by a read_committed consumer (see kafka_status)."""
    from streamflow.kafka_status import KafkaStatusHook

    return asdict(KafkaStatusHook(settings, timeout_s=5.0).count_committed_records(settings.topic_dlq, budget_s))



def sink_rejects(settings: Settings) -> dict[str, Any] | None:
    """Rows a bronze sink refused, kept in ``bronze.sink_rejects`` with PostgreSQL's error.

    ``{"relation", "rows", "by_table": {target table: rows}, "newest": iso, "age_s", "sqlstates"}``,
    or None when the table does not exist (migrations not applied: unknown, not zero). Each row is
    an event that passed the job's validation and is not in bronze, so the page shows any row red.
    """
    import psycopg

    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        conn.execute("SET statement_timeout = '5s'")
        exists = conn.execute("SELECT to_regclass(%s)", (SINK_REJECTS_RELATION,)).fetchone()
        if not exists or exists[0] is None:
            return None
        rows = conn.execute(
            "SELECT target_table, count(*), max(last_rejected_at), "
            "extract(epoch FROM now() - max(last_rejected_at)), array_agg(DISTINCT sqlstate ORDER BY sqlstate) "
            "FROM bronze.sink_rejects GROUP BY target_table ORDER BY target_table"
        ).fetchall()
    by_table = {str(table): int(count) for table, count, *_ in rows}
    newest = max((row[2] for row in rows if row[2] is not None), default=None)
    ages = [float(row[3]) for row in rows if row[3] is not None]
    return {"relation": SINK_REJECTS_RELATION, "rows": sum(by_table.values()), "by_table": by_table,
            "newest": _iso(newest), "age_s": round(min(ages), 1) if ages else None,
            "sqlstates": sorted({str(code) for row in rows for code in (row[4] or [])})}

def flink_health(settings: Settings, jobs: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """``streamflow.runtime.health.job_health`` per job as a dict; None where it could not be read.

    None renders as unknown (grey), never as ok: a missing module, an unknown job or a probe that
    raised all mean "we do not know"."""
    out: dict[str, dict[str, Any] | None] = {}
    for job in jobs:
        try:
            from streamflow.runtime.health import job_health

            out[job] = asdict(job_health(job, settings))
        except Exception as error:
            log.warning("flink health unknown", job=job, error=f"{type(error).__name__}: {error}")
            out[job] = None
    return out


def consumer_lags(settings: Settings, jobs: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Per job: its Kafka consumer group (``FlinkJobSpec.kafka_group_id``) and how far it is behind on
    the pipeline's topics it consumes (those it committed offsets for)."""
    from streamflow.flink_spec import spec_for
    from streamflow.kafka_status import KafkaStatusHook

    hook = KafkaStatusHook(settings, timeout_s=5.0)
    out: dict[str, dict[str, Any] | None] = {}
    for job in jobs:
        try:
            group = spec_for(job).kafka_group_id
            out[job] = asdict(hook.group_lag(group, settings.topics)) if group else None
        except Exception as error:
            log.warning("consumer lag unknown", job=job, error=f"{type(error).__name__}: {error}")
            out[job] = None
    return out


def quality_history(settings: Settings, runs: int = 30) -> dict[str, Any]:
    """dbt_quality results of the last ``runs`` DAG runs: per-run status counts, latest failures and
    each check's latest status. Empty lists when the table is missing (migrations not applied)."""
    import psycopg
    from psycopg.rows import dict_row

    out: dict[str, Any] = {"runs": [], "failures": [], "tests": []}
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5, row_factory=dict_row) as conn:
        exists = conn.execute("SELECT to_regclass('quality.dbt_test_results') AS t").fetchone()
        if not exists or exists["t"] is None:
            return out
        per_run = conn.execute(
            """
            WITH recent AS (
                SELECT dag_run_id, min(run_at) AS run_at FROM quality.dbt_test_results
                GROUP BY dag_run_id ORDER BY min(run_at) DESC LIMIT %s)
            SELECT r.dag_run_id, r.run_at,
                   count(*) FILTER (WHERE t.status = 'pass') AS pass,
                   count(*) FILTER (WHERE t.status = 'warn') AS warn,
                   count(*) FILTER (WHERE t.status = 'fail') AS fail,
                   count(*) FILTER (WHERE t.status IN ('error', 'runtime error')) AS error,
                   count(*) FILTER (WHERE t.status NOT IN ('pass', 'warn', 'fail', 'error', 'runtime error'))
                       AS other
            FROM recent r JOIN quality.dbt_test_results t USING (dag_run_id)
            GROUP BY r.dag_run_id, r.run_at ORDER BY r.run_at
            """,
            (runs,),
        ).fetchall()
        out["runs"] = [{**row, "run_at": _iso(row["run_at"])} for row in per_run]
        failures = conn.execute(
            "SELECT dag_run_id, test_group, unique_id, test_name, status, failures, message, run_at "
            "FROM quality.dbt_test_results WHERE status IN ('fail', 'error', 'runtime error', 'warn') "
            "ORDER BY run_at DESC LIMIT 50"
        ).fetchall()
        out["failures"] = [{**row, "run_at": _iso(row["run_at"])} for row in failures]
        latest = conn.execute(
            "SELECT DISTINCT ON (unique_id) unique_id, test_name, test_group, status, failures, run_at "
            "FROM quality.dbt_test_results ORDER BY unique_id, run_at DESC"
        ).fetchall()
        out["tests"] = [{**row, "run_at": _iso(row["run_at"])} for row in latest]
    return out


def gather(probes: dict[str, Callable[[], T]], timeout_s: float = 20.0) -> tuple[dict[str, T], dict[str, str]]:
    """Run independent probes in parallel, each bounded by ``timeout_s``; return (results, errors).

    The page must answer even when Kafka or Postgres hangs: a probe that times out or raises is
    reported in ``errors`` and its key is left out of the results.
    """
    results: dict[str, T] = {}
    errors: dict[str, str] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="portal")
    try:
        futures = {name: pool.submit(fn) for name, fn in probes.items()}
        done, _ = concurrent.futures.wait(futures.values(), timeout=timeout_s)
        for name, future in futures.items():
            if future not in done:
                errors[name] = f"timed out after {timeout_s:.0f} s"
            elif (exc := future.exception()) is not None:
                errors[name] = f"{type(exc).__name__}: {exc}"
            else:
                results[name] = future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results, errors
