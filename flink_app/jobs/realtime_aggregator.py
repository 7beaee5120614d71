"""realtime_aggregator: 1-minute event-time windows per store and overall, in Flink SQL.

Why SQL: windows and sums are what Flink's SQL runtime does in Java at full speed. The only Python
per record is one table function that applies the processor's own parser/schema (so an event is
counted exactly when it reaches bronze; malformed ones are skipped, the DLQ is the processor's
job). Sources are ``transactions.raw`` (raw bytes; event time read in SQL for the watermark) and
``fraud.alerts`` (JSON, read_committed). Watermark = max event time - delay; windows fire
early every ``--early-fire-seconds``, close at the watermark and are updated again by late events up
to ``--allowed-lateness-seconds``. Results are upserts: bronze.realtime_metrics on
(window_start, store_id) via JDBC, and ``metrics.realtime`` via upsert-kafka with the same key.
"""

from __future__ import annotations

import sys

from pyflink.table import DataTypes
from pyflink.table.udf import TableFunction, udtf

from flink_app import config, events, sql
from flink_app.jobs.common import environments, job_log
from flink_app.windows import OVERALL

NAME = "realtime-aggregator"


EPOCH = "TIMESTAMP '1970-01-01 00:00:00.000'"
RAW_EVENT_TIME = (
    "CAST(TO_TIMESTAMP(REPLACE(REPLACE(JSON_VALUE(CAST(`value` AS STRING), '$.event_time'), 'T', ' '), 'Z', ''))"
    " AS TIMESTAMP(3))"
)


def source_ddl(name: str, options: dict[str, str], columns: str, event_time: str, delay_s: int) -> str:
    """A source with ``ts`` = event time (epoch 0 when unreadable: such rows are filtered out)."""
    return (
        f"CREATE TABLE {name} (\n{columns},\n"
        f"  ts AS COALESCE({event_time}, {EPOCH}),\n"
        f"  WATERMARK FOR ts AS ts - INTERVAL '{delay_s}' SECOND\n"
        f") {sql.with_clause(options)}"
    )


class ValidTransaction(TableFunction):  # type: ignore[misc]
    """(store_id, amount) of an event the transaction processor would accept; nothing otherwise.

    The same parser and schema as the processor decide what is counted, so metrics never include
    an event that went to the DLQ (JSON the reader can parse but the schema rejects, oversized...).
    """

    def __init__(self, schema_path: str, max_bytes: int) -> None:
        self.schema_path = schema_path
        self.max_bytes = max_bytes
        self.validator = None

    def open(self, function_context):  # type: ignore[no-untyped-def]
        self.validator = events.load_validator(self.schema_path)

    def eval(self, value):  # type: ignore[no-untyped-def]
        try:
            result = events.parse_event(bytes(value) if value is not None else None, self.validator, self.max_bytes)
        except Exception:  # never fail the job on input; the processor DLQs it
            return
        if isinstance(result, events.Transaction):
            yield result.store_id, result.amount


def statements(args, kafka: sql.KafkaOptions, jdbc: sql.JdbcOptions) -> list[str]:  # type: ignore[no-untyped-def]
    delay = int(args.watermark_delay_seconds)
    txn_columns = "  `value` BYTES"
    alert_columns = "  alert_id STRING,\n  store_id STRING,\n  event_time TIMESTAMP_LTZ(3)"
    window = f"INTERVAL '{int(args.window_seconds)}' SECOND"
    valid_since = "TIMESTAMP '2000-01-01 00:00:00'"  # rows whose event_time did not parse have epoch 0
    fmt = "'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''"
    aggregates = ("CAST(SUM(txn) AS BIGINT) AS txn_count, CAST(SUM(amount) AS DECIMAL(18, 2)) AS amount_sum, "
                  "CAST(SUM(alert) AS BIGINT) AS alert_count")
    views = [
        f"""CREATE TEMPORARY VIEW window_events AS
  SELECT v.store_id, CAST(v.amount AS DECIMAL(18, 2)) AS amount, 1 AS txn, 0 AS alert, ts
    FROM txns, LATERAL TABLE(valid_transaction(`value`)) AS v(store_id, amount)
   WHERE ts > {valid_since}
  UNION ALL
  SELECT store_id, CAST(0 AS DECIMAL(18, 2)) AS amount, 0 AS txn, 1 AS alert, ts FROM alerts
   WHERE alert_id IS NOT NULL AND store_id IS NOT NULL AND ts > {valid_since}""",
        f"""CREATE TEMPORARY VIEW window_per_store AS
  SELECT TUMBLE_START(ts, {window}) AS ws, TUMBLE_END(ts, {window}) AS we, store_id, {aggregates}
    FROM window_events GROUP BY TUMBLE(ts, {window}), store_id""",
        f"""CREATE TEMPORARY VIEW window_overall AS
  SELECT TUMBLE_START(ts, {window}) AS ws, TUMBLE_END(ts, {window}) AS we, '{OVERALL}' AS store_id, {aggregates}
    FROM window_events GROUP BY TUMBLE(ts, {window})""",
        f"""CREATE TEMPORARY VIEW window_metrics AS
  SELECT DATE_FORMAT(ws, {fmt}) AS window_start, DATE_FORMAT(we, {fmt}) AS window_end, store_id,
         txn_count, amount_sum, alert_count
    FROM (SELECT * FROM window_per_store UNION ALL SELECT * FROM window_overall)""",
    ]
    now = f"DATE_FORMAT(CURRENT_TIMESTAMP, {fmt})"
    return [
        source_ddl("txns", kafka.source(args.source_topic, args.group_id), txn_columns, RAW_EVENT_TIME, delay),
        source_ddl("alerts", kafka.source(args.alerts_topic, args.group_id, "json"), alert_columns,
                   "CAST(event_time AS TIMESTAMP(3))", delay),
        sql.jdbc_sink_ddl("bronze_realtime_metrics", sql.BRONZE_METRICS_COLUMNS, ("window_start", "store_id"),
                          jdbc.sink("bronze.realtime_metrics")),
        "CREATE TABLE metrics_kafka (\n  window_start STRING,\n  window_end STRING,\n  store_id STRING,\n"
        "  txn_count BIGINT,\n  amount_sum DECIMAL(18, 2),\n  alert_count BIGINT,\n  alert_rate DOUBLE,\n"
        "  updated_at STRING,\n  PRIMARY KEY (window_start, store_id) NOT ENFORCED\n) "
        + sql.with_clause(kafka.upsert_sink(args.metrics_topic, f"{args.group_id}-metrics")),
        *views,
        f"INSERT INTO bronze_realtime_metrics SELECT window_start, window_end, store_id, txn_count, amount_sum, "
        f"alert_count, {now} FROM window_metrics",
        f"INSERT INTO metrics_kafka SELECT window_start, window_end, store_id, txn_count, amount_sum, alert_count, "
        f"CAST(alert_count AS DOUBLE) / CAST(NULLIF(txn_count, 0) AS DOUBLE), {now} FROM window_metrics",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or NAME)
    parser.add_argument("--alerts-topic", default="fraud.alerts")
    parser.add_argument("--metrics-topic", default="metrics.realtime")
    parser.add_argument("--window-seconds", type=int, default=60)
    parser.add_argument("--watermark-delay-seconds", type=int, default=5)
    parser.add_argument("--allowed-lateness-seconds", type=int, default=300)
    parser.add_argument("--early-fire-seconds", type=int, default=10)
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    log = job_log(NAME)

    _env, t_env = environments()
    table_config = t_env.get_config()
    table_config.set("pipeline.name", args.job_name or NAME)
    if args.early_fire_seconds > 0:
        table_config.set("table.exec.emit.early-fire.enabled", "true")
        table_config.set("table.exec.emit.early-fire.delay", f"{args.early_fire_seconds} s")
    if args.allowed_lateness_seconds > 0:
        table_config.set("table.exec.emit.late-fire.enabled", "true")
        table_config.set("table.exec.emit.late-fire.delay", "0 s")
        table_config.set("table.exec.emit.allow-lateness", f"{args.allowed_lateness_seconds} s")
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    t_env.create_temporary_function("valid_transaction", udtf(
        ValidTransaction(str(events.schema_path()), args.max_event_bytes),
        result_types=[DataTypes.STRING(), DataTypes.DOUBLE()]))
    *ddl, insert_bronze, insert_kafka = statements(args, kafka, jdbc)
    for statement in ddl:
        t_env.execute_sql(statement)
    statement_set = t_env.create_statement_set()
    statement_set.add_insert_sql(insert_bronze)
    statement_set.add_insert_sql(insert_kafka)
    log.info("submitting %s window=%ss lateness=%ss", NAME, args.window_seconds, args.allowed_lateness_seconds)
    statement_set.execute()


if __name__ == "__main__":
    main(sys.argv[1:])
