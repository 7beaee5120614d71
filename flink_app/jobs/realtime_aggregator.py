"""realtime_aggregator: 1-minute event-time windows per store and overall, in Flink SQL.

Why SQL: windows and sums are what Flink's SQL runtime does in Java at full speed. An event of the
canonical shape (flink_app.shape_check, proven sound) is read by a Java table function
(``canonical_transaction``, io.streamflow.flink, with the byte limit and the skew bound); every other
record goes to one Python table function that applies the processor's own parser/schema (so an event
is counted exactly when it reaches bronze; malformed ones are skipped, the DLQ is the processor's
job). The split (``is_canonical``) does not read the clock, so a record takes exactly one path.
Sources are ``transactions.raw`` (raw bytes; event time read at the source for the watermark, see
:func:`raw_event_time`) and
``fraud.alerts`` (JSON, read_committed). Watermark = max event time - delay, over the events whose
time is not beyond the wall clock + ``--max-future-skew-seconds`` (see :func:`watermark`); a Kafka
partition that sends nothing for ``--source-idle-seconds`` stops holding it back (see :func:`idle_after`);
windows fire early every ``--early-fire-seconds``, close at the watermark and are updated again by late events up
to ``--allowed-lateness-seconds``. Results are upserts: bronze.realtime_metrics on
(window_start, store_id) via JDBC, and ``metrics.realtime`` via upsert-kafka with the same key.
"""

from __future__ import annotations

import sys

from pyflink.table import DataTypes
from pyflink.table.udf import TableFunction, udtf

from flink_app import config, events, jvm_functions, shape_check, sql
from flink_app.jobs.common import EventParsing, environments, job_log
from flink_app.windows import OVERALL

NAME = "realtime-aggregator"


EPOCH = "TIMESTAMP '1970-01-01 00:00:00.000'"
TIME_FORMAT = "'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''"  # DATE_FORMAT pattern of the ISO-8601 UTC strings
#: The raw event_time of any record as SQL reads it (NULL when it is missing or does not parse).
JSON_EVENT_TIME = (
    "CAST(TO_TIMESTAMP(REPLACE(REPLACE(JSON_VALUE(CAST(`value` AS STRING), '$.event_time'), 'T', ' '), 'Z', ''))"
    " AS TIMESTAMP(3))"
)


def raw_event_time(max_event_bytes: int) -> str:
    """The event time of a ``transactions.raw`` record: :data:`JSON_EVENT_TIME`, read in Java for a record of the
    canonical shape (``canonical_event_time``: the same TIMESTAMP, without parsing the JSON into a tree; the
    planner computes this column for the watermark and again in each branch, and the Java functions of a
    chain share one parse per record)."""
    shape = jvm_functions.sql_literal(shape_check.SHAPE)
    fast = f"{jvm_functions.CANONICAL_EVENT_TIME}(`value`, {shape}, {int(max_event_bytes)})"
    # CASE, not COALESCE: Flink's code for CASE evaluates only the branch taken (COALESCE evaluated JSON_VALUE
    # for every record); the second call of the Java function is answered from its per-thread parse
    return f"CASE WHEN {fast} IS NOT NULL THEN {fast} ELSE {JSON_EVENT_TIME} END"


#: A skew beyond this (about 10,000 years) admits every event time a 4-digit year can write: no guard.
UNBOUNDED_SKEW_S = 3.2e11


def interval(seconds: float) -> str:
    """A day-time interval of any length, to the millisecond (``INTERVAL 'n' SECOND`` only takes n < 100)."""
    return f"(INTERVAL '0.001' SECOND * {round(seconds * 1000)})"


def watermark(rowtime: str, delay_s: float, max_future_skew_s: float) -> str:
    """The watermark of a source: ``rowtime - delay``, but NULL (Flink then keeps the watermark where it
    is) for a row whose time is beyond the wall clock + ``max_future_skew_s``.

    Why (issue 17): the watermark is computed at the source, per Kafka partition, before any Python
    validation can run (computing it after the table function would merge the partitions and drop a
    lagging partition's events as late during every catch-up). It used to take the raw event time of
    every message, so one message dated far ahead (the processor dead-letters it as
    ``future_event_time``) moved the clock past all later valid events, and those were dropped as late:
    the metrics stopped. This applies the processor's own skew rule (``events.parse_event``, same
    ``--max-future-skew-seconds``) in SQL, on the event time the source column already holds (a
    comparison; a Python call that does nothing would cost 22 us, ADR 0012). An invalid message whose
    time is within the skew still counts for the watermark, exactly as a valid event of that time would:
    it can move the clock no further than valid traffic can. What is *counted* in a window is decided by
    the processor's full validation (:class:`ValidTransaction`).
    """
    late = f"{rowtime} - {interval(delay_s)}"
    if max_future_skew_s >= UNBOUNDED_SKEW_S:
        return late
    return f"CASE WHEN {rowtime} <= LOCALTIMESTAMP + {interval(max_future_skew_s)} THEN {late} END"


def idle_after(options: dict[str, str], seconds: float) -> dict[str, str]:
    """Kafka source ``options`` under which a partition silent for ``seconds`` (wall time) is idle.

    Why: the windows' clock is the minimum over every partition of both topics, and a partition that
    receives nothing has no clock at all - after a restore, or an alerts partition no fraud lands on.
    One such partition kept every window open for good: none closed, each was re-evaluated by the
    early-fire timer every 10 s (a long-lived stack burned most of a core on it) and the state grew
    with every minute of traffic. An idle partition no longer counts; when it sends again it counts
    again. The default equals the allowed lateness (300 s): long enough that the fraud detector's
    alerts, which follow the transactions, hold the windows during a backfill (the detector starts
    seconds after the others). Accepted cost: when *every* alerts partition has been silent that long
    while transactions flow (the detector down for minutes), the windows close on the transactions
    alone, and an alert that arrives more than the allowed lateness behind them is not counted in
    ``alert_count`` (it is in ``fraud.alerts`` and bronze as always). 0 disables idleness.
    """
    if seconds <= 0:
        return options
    return {**options, "scan.watermark.idle-timeout": f"{round(seconds * 1000)} ms"}


def source_ddl(name: str, options: dict[str, str], columns: str, event_time: str, delay_s: float,
               max_future_skew_s: float) -> str:
    """A source with ``ts`` = event time (epoch 0 when unreadable: such rows are filtered out) and the
    guarded :func:`watermark` (``LOCALTIMESTAMP`` is UTC: ``environments()`` sets the session zone)."""
    return (
        f"CREATE TABLE {name} (\n{columns},\n"
        f"  ts AS COALESCE({event_time}, {EPOCH}),\n"
        f"  WATERMARK FOR ts AS {watermark('ts', delay_s, max_future_skew_s)}\n"
        f") {sql.with_clause(options)}"
    )


class ValidTransaction(EventParsing, TableFunction):  # type: ignore[misc]
    """(store_id, amount) and (OVERALL, amount) of an event the transaction processor would accept; nothing
    otherwise (two rows: one window aggregation yields the per-store and the overall metrics).

    The same parser, schema and future-skew bound as the processor decide what is counted, so metrics
    never include an event that went to the DLQ (JSON the reader can parse but the schema rejects,
    oversized, dated beyond the skew...).
    """

    def __init__(self, schema_path: str, max_bytes: int,
                 max_future_skew_s: float = events.DEFAULT_MAX_FUTURE_SKEW_S) -> None:
        super().__init__(schema_path, max_bytes, max_future_skew_s)

    def eval(self, value):  # type: ignore[no-untyped-def]
        result = self.parse(value)  # never raises: the job never fails on input, the processor DLQs it
        if isinstance(result, events.Transaction):
            yield result.store_id, result.amount
            yield OVERALL, result.amount


def txns_source(args, options: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """``txns``: the raw bytes of ``transactions.raw``; ``ts`` from the raw event_time (:func:`raw_event_time`)."""
    return source_ddl("txns", options, "  `value` BYTES", raw_event_time(args.max_event_bytes),
                      args.watermark_delay_seconds, args.max_future_skew_seconds)


def alerts_source(args, options: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """``alerts``: the fraud_detector's alerts (JSON); ``ts`` from the transaction's event time."""
    columns = "  alert_id STRING,\n  store_id STRING,\n  event_time TIMESTAMP_LTZ(3)"
    return source_ddl("alerts", options, columns, "CAST(event_time AS TIMESTAMP(3))", args.watermark_delay_seconds,
                      args.max_future_skew_seconds)


def views(args) -> list[str]:  # type: ignore[no-untyped-def]
    """The windows over ``txns`` and ``alerts``; ``window_metrics`` is what both sinks write.

    Every event and alert enters the window aggregation twice, under its store and under ``OVERALL``:
    one aggregation per window yields both kinds of rows (two aggregations used to read every event
    twice), and each table function appears once in the plan (Flink does not share a correlated
    table function between two consumers: ``$cor`` ids differ).
    """
    window = f"INTERVAL '{int(args.window_seconds)}' SECOND"
    valid_since = "TIMESTAMP '2000-01-01 00:00:00'"  # rows whose event_time did not parse have epoch 0
    aggregates = ("CAST(SUM(txn) AS BIGINT) AS txn_count, CAST(SUM(amount) AS DECIMAL(18, 2)) AS amount_sum, "
                  "CAST(SUM(alert) AS BIGINT) AS alert_count")
    shape = jvm_functions.sql_literal(shape_check.SHAPE)
    max_bytes = int(args.max_event_bytes)
    canonical = (f"{jvm_functions.CANONICAL_TRANSACTION}(`value`, {shape}, {max_bytes}, "
                 f"CAST({float(args.max_future_skew_seconds)!r} AS DOUBLE), '{OVERALL}')")
    return [
        f"""CREATE TEMPORARY VIEW window_events AS
  SELECT c.store_id, CAST(c.amount AS DECIMAL(18, 2)) AS amount, 1 AS txn, 0 AS alert, ts
    FROM txns, LATERAL TABLE({canonical}) AS c(store_id, amount)
   WHERE ts > {valid_since}
  UNION ALL
  SELECT v.store_id, CAST(v.amount AS DECIMAL(18, 2)) AS amount, 1 AS txn, 0 AS alert, ts
    FROM txns, LATERAL TABLE(valid_transaction(`value`)) AS v(store_id, amount)
   WHERE ts > {valid_since} AND NOT {jvm_functions.IS_CANONICAL}(`value`, {shape}, {max_bytes})
  UNION ALL
  SELECT store_id, CAST(0 AS DECIMAL(18, 2)) AS amount, 0 AS txn, 1 AS alert, ts FROM alerts
   WHERE alert_id IS NOT NULL AND store_id IS NOT NULL AND ts > {valid_since}
  UNION ALL
  SELECT '{OVERALL}' AS store_id, CAST(0 AS DECIMAL(18, 2)) AS amount, 0 AS txn, 1 AS alert, ts FROM alerts
   WHERE alert_id IS NOT NULL AND store_id IS NOT NULL AND ts > {valid_since}""",
        f"""CREATE TEMPORARY VIEW window_metrics AS
  SELECT DATE_FORMAT(TUMBLE_START(ts, {window}), {TIME_FORMAT}) AS window_start,
         DATE_FORMAT(TUMBLE_END(ts, {window}), {TIME_FORMAT}) AS window_end, store_id, {aggregates}
    FROM window_events GROUP BY TUMBLE(ts, {window}), store_id""",
    ]


#: What both sinks read: ``window_metrics`` computed once (see :func:`main`).
METRICS_ONCE = "window_metrics_once"


def statements(args, kafka: sql.KafkaOptions, jdbc: sql.JdbcOptions) -> list[str]:  # type: ignore[no-untyped-def]
    """Sources, sinks, views, and the two INSERTs (they read :data:`METRICS_ONCE`, which :func:`main` makes)."""
    now = f"DATE_FORMAT(CURRENT_TIMESTAMP, {TIME_FORMAT})"
    return [
        txns_source(args, idle_after(kafka.source(args.source_topic, args.group_id), args.source_idle_seconds)),
        alerts_source(args, idle_after(kafka.source(args.alerts_topic, args.group_id, "json"),
                                       args.source_idle_seconds)),
        sql.jdbc_sink_ddl("bronze_realtime_metrics", sql.BRONZE_METRICS_COLUMNS, ("window_start", "store_id"),
                          jdbc.sink("bronze.realtime_metrics")),
        "CREATE TABLE metrics_kafka (\n  window_start STRING,\n  window_end STRING,\n  store_id STRING,\n"
        "  txn_count BIGINT,\n  amount_sum DECIMAL(18, 2),\n  alert_count BIGINT,\n  alert_rate DOUBLE,\n"
        "  updated_at STRING,\n  PRIMARY KEY (window_start, store_id) NOT ENFORCED\n) "
        + sql.with_clause(kafka.upsert_sink(args.metrics_topic, f"{args.group_id}-metrics")),
        *views(args),
        f"INSERT INTO bronze_realtime_metrics SELECT window_start, window_end, store_id, txn_count, amount_sum, "
        f"alert_count, {now} FROM {METRICS_ONCE}",
        f"INSERT INTO metrics_kafka SELECT window_start, window_end, store_id, txn_count, amount_sum, alert_count, "
        f"CAST(alert_count AS DOUBLE) / CAST(NULLIF(txn_count, 0) AS DOUBLE), {now} FROM {METRICS_ONCE}",
    ]


def parser():  # type: ignore[no-untyped-def]
    parser = config.base_parser(__doc__ or NAME)
    parser.add_argument("--alerts-topic", default="fraud.alerts")
    parser.add_argument("--metrics-topic", default="metrics.realtime")
    parser.add_argument("--window-seconds", type=int, default=60)
    parser.add_argument("--watermark-delay-seconds", type=int, default=5)
    parser.add_argument("--allowed-lateness-seconds", type=int, default=300)
    parser.add_argument("--early-fire-seconds", type=int, default=10)
    parser.add_argument("--source-idle-seconds", type=float, default=300.0,
                        help="a Kafka partition silent this long stops holding the windows open (0: never)")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    return parser


def configure(t_env, args) -> None:  # type: ignore[no-untyped-def]
    """Window emission (early and late firing, allowed lateness) and the validating table function."""
    table_config = t_env.get_config()
    table_config.set("pipeline.name", args.job_name or NAME)
    if args.early_fire_seconds > 0:
        table_config.set("table.exec.emit.early-fire.enabled", "true")
        table_config.set("table.exec.emit.early-fire.delay", f"{args.early_fire_seconds} s")
    if args.allowed_lateness_seconds > 0:
        table_config.set("table.exec.emit.late-fire.enabled", "true")
        table_config.set("table.exec.emit.late-fire.delay", "0 s")
        table_config.set("table.exec.emit.allow-lateness", f"{args.allowed_lateness_seconds} s")
    table_config.set("table.exec.sink.upsert-materialize", "NONE")  # see metrics_once
    jvm_functions.register_sql_functions(t_env)
    t_env.create_temporary_function("valid_transaction", udtf(
        ValidTransaction(str(events.schema_path()), args.max_event_bytes, args.max_future_skew_seconds),
        result_types=[DataTypes.STRING(), DataTypes.DOUBLE()]))


def metrics_once(t_env):  # type: ignore[no-untyped-def]
    """``window_metrics`` computed once for both sinks, as a changelog without UPDATE_BEFORE rows.

    Why: two INSERTs over one view are planned apart - Flink computed the windows once per sink, and the
    correlated table functions with them. Through one changelog stream both sinks share one result. The
    sinks upsert on (window_start, store_id) and need only the new row of a key: the stream drops the
    UPDATE_BEFORE rows (in Java; the JDBC sink took one for a delete when a flush fell between it and its
    update), and :func:`configure` turns off the SinkUpsertMaterializer, which kept every row of every
    window in state only to put reordered changes back in order - these arrive in order: the rows of a
    key come from one window task over forward edges.
    """
    changelog = jvm_functions.upserts(t_env.to_changelog_stream(t_env.from_path("window_metrics")))
    return t_env.from_changelog_stream(changelog)


def main(argv: list[str] | None = None) -> None:
    args = config.parse(parser(), argv)
    endpoints = config.Endpoints.from_env()
    log = job_log(NAME)

    env, t_env = environments()
    configure(t_env, args)
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    *ddl, insert_bronze, insert_kafka = statements(args, kafka, jdbc)
    for statement in ddl:
        t_env.execute_sql(statement)
    t_env.create_temporary_view(METRICS_ONCE, metrics_once(t_env))
    statement_set = t_env.create_statement_set()
    statement_set.add_insert_sql(insert_bronze)
    statement_set.add_insert_sql(insert_kafka)
    statement_set.attach_as_datastream()
    log.info("submitting %s window=%ss lateness=%ss", NAME, args.window_seconds, args.allowed_lateness_seconds)
    env.execute(args.job_name or NAME)


if __name__ == "__main__":
    main(sys.argv[1:])
