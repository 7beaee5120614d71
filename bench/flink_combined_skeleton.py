"""Skeleton of "one read, one parse": the three pipelines in one Flink job (issue 13, step 4).

One Kafka source; one Python operator parses and validates each event once (the processor's own
``events.parse_event``) and emits a typed row ``(customer_id, ROW(transaction fields))``; then
- bronze: SQL selects the bronze columns from the typed rows (JDBC upsert or blackhole);
- detection: Java ``keyBy`` on customer_id (no second parse, no pickled hand-off) into the detector's
  keyed scoring (flat state, ``FraudScorer``), alerts to JDBC or blackhole;
- windows: the aggregator's 1-minute tumbling windows per store in SQL over the typed rows (event
  time from the parsed field; the real job also counts alerts, left out here).

It measures what the design would cost, not a finished job: no DLQ side output, no Kafka sinks.
Submitted by ``bench/flink_stages.py`` through the local runtime like the real jobs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, KeyedStream, ProcessFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway
from pyflink.table import Schema

from flink_app import config, events, sql
from flink_app.detection import keyed
from flink_app.jobs.common import environments, now_iso

FIELDS = (("transaction_id", Types.STRING()), ("customer_id", Types.STRING()), ("store_id", Types.STRING()),
          ("store_category", Types.STRING()), ("amount", Types.DOUBLE()), ("event_time", Types.STRING()),
          ("event_ts_ms", Types.LONG()), ("lat", Types.DOUBLE()), ("lon", Types.DOUBLE()),
          ("payload", Types.STRING()), ("kafka_topic", Types.STRING()), ("kafka_partition", Types.INT()),
          ("kafka_offset", Types.LONG()), ("ingested_at", Types.STRING()))
TXN = Types.ROW_NAMED([n for n, _ in FIELDS], [t for _, t in FIELDS])
TYPED = Types.ROW_NAMED(["customer_id", "t"], [Types.STRING(), TXN])
ALERT = Types.ROW_NAMED([c for c, _ in sql.BRONZE_ALERTS_COLUMNS],
                        [Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(),
                         Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING()])


class Validate(ProcessFunction):  # type: ignore[misc]
    def __init__(self, schema_path: str) -> None:
        self.schema_path = schema_path
        self.validator: Any = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        self.validator = events.load_validator(self.schema_path)

    def process_element(self, row, ctx):  # type: ignore[no-untyped-def]
        txn = events.parse_event(bytes(row[0]) if row[0] is not None else None, self.validator)
        if isinstance(txn, events.Transaction):
            yield Row(txn.customer_id, Row(txn.transaction_id, txn.customer_id, txn.store_id, txn.store_category,
                                           txn.amount, txn.event_time, int(txn.event_ts * 1000), txn.lat, txn.lon,
                                           json.dumps(txn.payload, separators=(",", ":")), row[1], row[2], row[3],
                                           now_iso()))


class Score(KeyedProcessFunction):  # type: ignore[misc]
    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir
        self.scorer: Any = None
        self.state: Any = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        from flink_app.model.artifact import load_scorer

        self.scorer = load_scorer(self.model_dir)
        self.state = runtime_context.get_state(ValueStateDescriptor("customer_flat", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, t, ctx):  # type: ignore[no-untyped-def]
        txn = events.Transaction(transaction_id=t[0], customer_id=t[1], card_id="", store_id=t[2],
                                 store_category=t[3], amount=t[4], channel="", event_time=t[5],
                                 event_ts=t[6] / 1000.0, lat=t[7], lon=t[8], payload={})
        customer, timer_ms = keyed.load(self.state.value())
        alerts = self.scorer.process(customer, txn)
        now_ms = ctx.timer_service().current_processing_time()
        new_timer = keyed.timer_to_register(now_ms, timer_ms, 30)
        if new_timer is not None:
            ctx.timer_service().register_processing_time_timer(new_timer)
            timer_ms = new_timer
        self.state.update(keyed.store(customer, now_ms, timer_ms or 0))
        detected_at = now_iso()
        for a in alerts:
            yield Row(a.transaction_id, a.transaction_id, a.customer_id, a.fraud_score, a.model_score,
                      sql.pg_text_array(a.rules_fired), a.model_version, json.dumps(a.as_dict()), a.event_time,
                      detected_at)

    def on_timer(self, timestamp, ctx):  # type: ignore[no-untyped-def]
        return iter(())


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or "combined-skeleton")
    parser.add_argument("--sinks", choices=("blackhole", "jdbc"), default="blackhole")
    parser.add_argument("--dlq-topic", default="dlq.errors")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    parser.add_argument("--model-dir", default=str(events.DEFAULT_SCHEMA.parents[2] / "flink_app/model/artifacts"))
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    env, t_env = environments()
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    sinks = {"bronze": ("bronze.raw_transactions", sql.BRONZE_TRANSACTIONS_COLUMNS, ("transaction_id",)),
             "alerts": ("bronze.raw_fraud_alerts", sql.BRONZE_ALERTS_COLUMNS, ("alert_id",)),
             "metrics": ("bronze.realtime_metrics", sql.BRONZE_METRICS_COLUMNS, ("window_start", "store_id"))}
    for name, (table, columns, key) in sinks.items():
        if args.sinks == "jdbc":
            t_env.execute_sql(sql.jdbc_sink_ddl(f"{name}_sink", columns, key, jdbc.sink(table)))
        else:
            cols = ", ".join(f"`{c}` {t}" for c, t in columns)
            t_env.execute_sql(f"CREATE TABLE {name}_sink ({cols}) WITH ('connector' = 'blackhole')")

    raw = t_env.to_data_stream(t_env.from_path("source_raw"))
    typed = raw.process(Validate(str(events.schema_path())), output_type=TYPED).name("validate")
    gateway = get_gateway()
    by_customer = KeyedStream(typed._j_data_stream.keyBy(gateway.jvm.KeyByKeySelector(),
                                                         Types.ROW([Types.STRING()]).get_java_type_info()),
                              TYPED, typed)
    alerts = by_customer.process(Score(args.model_dir), output_type=ALERT).name("score")
    t_env.create_temporary_view("typed", t_env.from_data_stream(
        typed, Schema.new_builder()
        .column_by_expression("ts", "TO_TIMESTAMP_LTZ(`t`.`event_ts_ms`, 3)")
        .watermark("ts", "ts - INTERVAL '5' SECOND").build()))
    t_env.create_temporary_view("alerts", t_env.from_data_stream(alerts))
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        "INSERT INTO bronze_sink SELECT t.transaction_id, t.payload, t.kafka_topic, t.kafka_partition, t.kafka_offset, "
        "t.event_time, t.ingested_at FROM typed")
    statements.add_insert_sql("INSERT INTO alerts_sink SELECT * FROM alerts")
    fmt = "'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''"
    statements.add_insert_sql(
        f"INSERT INTO metrics_sink SELECT DATE_FORMAT(TUMBLE_START(ts, INTERVAL '1' MINUTE), {fmt}), "
        f"DATE_FORMAT(TUMBLE_END(ts, INTERVAL '1' MINUTE), {fmt}), t.store_id, COUNT(*), "
        "CAST(SUM(t.amount) AS DECIMAL(18, 2)), CAST(0 AS BIGINT), DATE_FORMAT(CURRENT_TIMESTAMP, "
        f"{fmt}) FROM typed GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), t.store_id")
    statements.attach_as_datastream()
    env.execute(args.job_name or "combined-skeleton")


if __name__ == "__main__":
    main(sys.argv[1:])
