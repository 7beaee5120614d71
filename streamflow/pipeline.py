"""What bootstrap_pipeline's platform tasks do: preflight, provision, wait for bronze, publish docs,
summarise. Each function is a task callable; none runs at DAG-parse time."""

from __future__ import annotations

import json
import shutil
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, TopicPartition
from psycopg import sql

from streamflow import catalog
from streamflow.dbt_runner import run_dbt
from streamflow.kafka_status import RecordCount
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


# ---- this run's events: from the generator's offsets to bronze rows (ADR 0010) ------------------
#: Bronze rows ingested this long before the run started still count (clock skew between the Airflow
#: worker and the Flink TaskManagers that stamp ``ingested_at``); older rows never do.
CLOCK_SKEW_S = 60.0
#: The run's range is counted with a read_committed consumer within this many seconds.
COUNT_BUDGET_S = 180.0


class BronzeWaitError(RuntimeError):
    """This run's events did not all reach bronze (or the DLQ) in time; the message says which are missing."""


@dataclass(frozen=True)
class RunRange:
    """The offsets of ``transactions.raw`` this DAG run's generator wrote: [start, end) per partition."""

    topic: str
    start: dict[int, int]
    end: dict[int, int]
    records: int  # records a read_committed consumer receives in the range (markers/aborted excluded)
    started_at: float  # epoch seconds just before the generator ran
    dlq_topic: str
    dlq_start: dict[int, int]  # DLQ end offsets before the generator ran: its records for this run follow

    def contains(self, partition: int, offset: int) -> bool:
        return self.start.get(partition, 0) <= offset < self.end.get(partition, 0)

    def to_xcom(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("start", "end", "dlq_start"):  # XCom is JSON: keys become strings anyway
            data[key] = {str(p): o for p, o in data[key].items()}
        return data

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> RunRange:
        offsets = {key: {int(p): int(o) for p, o in data[key].items()} for key in ("start", "end", "dlq_start")}
        return cls(topic=str(data["topic"]), records=int(data["records"]), started_at=float(data["started_at"]),
                   dlq_topic=str(data["dlq_topic"]), **offsets)


@dataclass(frozen=True)
class RunAccount:
    """Where this run's records are: bronze rows and DLQ records with an offset in the range."""

    expected: int
    bronze: dict[int, int]  # partition -> this run's rows in bronze
    dlq: dict[int, int]  # partition -> this run's offsets only in the DLQ
    per_partition_expected: dict[int, int]

    @property
    def accounted(self) -> int:
        return sum(self.bronze.values()) + sum(self.dlq.values())

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.accounted >= self.expected

    def missing_text(self) -> str:
        parts = []
        for partition, want in sorted(self.per_partition_expected.items()):
            got_b, got_d = self.bronze.get(partition, 0), self.dlq.get(partition, 0)
            if got_b + got_d < want:
                parts.append(f"partition {partition}: {want - got_b - got_d} of {want} missing "
                             f"({got_b} in bronze, {got_d} in the DLQ)")
        return "; ".join(parts) or "none missing"


#: Kafka errors that only mean "not ready yet" (no leader elected or known yet, a slow broker).
_NOT_READY = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
              KafkaError._TRANSPORT, KafkaError._TIMED_OUT}


def _end_offsets(settings: Settings, topic: str, attempts: int = 10) -> dict[int, int]:
    """High watermarks per partition; retried while a partition has no leader yet (a topic created
    seconds ago answers NOT_LEADER_FOR_PARTITION until its leader is known)."""
    from confluent_kafka import KafkaException

    from streamflow.kafka_status import KafkaStatusHook

    for attempt in range(attempts):
        try:
            return KafkaStatusHook(settings).end_offsets(topic)
        except KafkaException as error:
            kafka_error = error.args[0] if error.args else None
            code = kafka_error.code() if isinstance(kafka_error, KafkaError) else None
            retriable = code in _NOT_READY or bool(getattr(kafka_error, "retriable", lambda: False)())
            if not retriable or attempt == attempts - 1:
                raise
            log.warning("kafka end offsets not available yet, retrying", topic=topic, error=kafka_error)
            time.sleep(min(0.5 * 2**attempt, 5.0))
    raise AssertionError("unreachable")


def _read_range(settings: Settings, topic: str, start: dict[int, int], end: dict[int, int],
                budget_s: float) -> tuple[dict[int, list[bytes | None]], bool]:
    """Values of the committed records in [start, end) per partition (read_committed), and whether
    every partition was read to its end (or to its last stable offset) within ``budget_s``."""
    wanted = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    values: dict[int, list[bytes | None]] = {p: [] for p in end}
    if not wanted:
        return values, True
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "streamflow-run-range",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    pending = set(wanted)
    try:
        consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in wanted.items()])
        deadline = time.monotonic() + budget_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                partition = message.partition()
                if partition not in pending:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # at the last stable offset: nothing more now
                        pending.discard(partition)
                        continue
                    raise RuntimeError(f"reading {topic}[{partition}]: {error}")
                offset = message.offset()
                if offset is None or offset >= wanted[partition][1]:
                    pending.discard(partition)
                    continue
                values[partition].append(message.value())
                if offset + 1 >= wanted[partition][1]:
                    pending.discard(partition)
    finally:
        consumer.close()
    return values, not pending


def transactions_offsets_before() -> dict[str, Any]:
    """Runs right before the generator: where ``transactions.raw`` and the DLQ end now."""
    s = get_settings()
    start, dlq_start = _end_offsets(s, s.topic_transactions), _end_offsets(s, s.topic_dlq)
    log.info("transactions offsets before the generator", topic=s.topic_transactions, start=start,
             dlq_start=dlq_start)
    return {"topic": s.topic_transactions, "start": {str(p): o for p, o in start.items()}, "started_at": time.time(),
            "dlq_topic": s.topic_dlq, "dlq_start": {str(p): o for p, o in dlq_start.items()}}


def transactions_offsets_after(ti: Any) -> dict[str, Any]:
    """Runs right after the generator: the end of its range and how many records it holds."""
    s = get_settings()
    before = ti.xcom_pull(task_ids="transactions_offsets_before")
    if not isinstance(before, dict):
        raise BronzeWaitError("no XCom from transactions_offsets_before: re-run the DAG from that task")
    return measure_run_range(s, before).to_xcom()


def measure_run_range(settings: Settings, before: dict[str, Any]) -> RunRange:
    start = {int(p): int(o) for p, o in before["start"].items()}
    end = _end_offsets(settings, str(before["topic"]))
    values, complete = _read_range(settings, str(before["topic"]), start, end, COUNT_BUDGET_S)
    if not complete:
        raise BronzeWaitError(f"could not count the run's records in {before['topic']} within {COUNT_BUDGET_S:.0f} s "
                              f"(offsets {start} -> {end}); Kafka at {settings.kafka_bootstrap} is slow or down")
    records = sum(len(v) for v in values.values())
    run = RunRange(topic=str(before["topic"]), start=start, end=end, records=records,
                   started_at=float(before["started_at"]), dlq_topic=str(before["dlq_topic"]),
                   dlq_start={int(p): int(o) for p, o in before["dlq_start"].items()})
    log.info("this run's range of transactions", topic=run.topic, start=start, end=end, records=records)
    if records == 0:
        raise BronzeWaitError(f"the generator wrote no record to {run.topic} (end offsets {start} -> {end}): "
                              "see the run_generator task log")
    return run


def account_run(settings: Settings, run: RunRange) -> RunAccount:
    """Count this run's records in bronze (offset in range, ingested since the run started) and the
    DLQ (its records name their source partition/offset). An offset in both counts once."""
    conditions = sql.SQL(" OR ").join(
        sql.SQL("(kafka_partition = {} AND kafka_offset >= {} AND kafka_offset < {})").format(
            sql.Literal(p), sql.Literal(run.start.get(p, 0)), sql.Literal(e))
        for p, e in sorted(run.end.items()) if e > run.start.get(p, 0)) or sql.SQL("false")
    query = sql.SQL("SELECT kafka_partition, count(*) FROM bronze.raw_transactions WHERE kafka_topic = %s "
                    "AND ingested_at >= to_timestamp(%s) AND ({}) GROUP BY kafka_partition").format(conditions)
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        bronze = {int(p): int(n) for p, n in conn.execute(query, (run.topic, run.started_at - CLOCK_SKEW_S))}
        dlq_pairs = _dlq_offsets(settings, run)
        if dlq_pairs:
            found = conn.execute(
                "SELECT kafka_partition, kafka_offset FROM bronze.raw_transactions WHERE kafka_topic = %s AND "
                "ingested_at >= to_timestamp(%s) AND (kafka_partition, kafka_offset) IN "
                "(SELECT * FROM unnest(%s::int[], %s::bigint[]))",
                (run.topic, run.started_at - CLOCK_SKEW_S, [p for p, _ in dlq_pairs], [o for _, o in dlq_pairs]),
            ).fetchall()
            dlq_pairs -= {(int(p), int(o)) for p, o in found}
    dlq: dict[int, int] = {}
    for partition, _ in dlq_pairs:
        dlq[partition] = dlq.get(partition, 0) + 1
    # per partition the offsets in the range (an upper bound of its records: markers take offsets too)
    expected = {p: e - run.start.get(p, 0) for p, e in run.end.items()}
    return RunAccount(expected=run.records, bronze=bronze, dlq=dlq, per_partition_expected=expected)


def _dlq_offsets(settings: Settings, run: RunRange) -> set[tuple[int, int]]:
    """(partition, offset) of this run's records the DLQ holds (records written since the run began)."""
    end = _end_offsets(settings, run.dlq_topic)
    values, _ = _read_range(settings, run.dlq_topic, run.dlq_start, end, 30.0)
    pairs: set[tuple[int, int]] = set()
    for records in values.values():
        for value in records:
            try:
                record = json.loads(value or b"")
                pair = (int(record["source_partition"]), int(record["source_offset"]))
            except (ValueError, KeyError, TypeError):
                continue  # not a DLQ record of ours: it cannot account for an offset
            if record.get("source_topic") == run.topic and run.contains(*pair):
                pairs.add(pair)
    return pairs


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
        from streamflow.flink_health import job_health

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
    from streamflow.kafka_status import KafkaStatusHook

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
