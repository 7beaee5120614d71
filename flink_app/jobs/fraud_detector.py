"""fraud_detector: per-customer scoring with keyed state; alerts to bronze and ``fraud.alerts``.

Kafka (raw bytes) -> parse + validate (invalid events are skipped here: the DLQ is the processor's job)
  -> key_by(customer_id) -> KeyedProcessFunction: FraudScorer over the customer's ValueState
     (five rules + IsolationForest via a numpy forest, noisy-OR into fraud_score in [0, 1])
  -> alerts (score >= --alert-threshold, incl. retroactive alerts for the earlier txns of a burst)
     -> bronze.raw_fraud_alerts (JDBC upsert on alert_id = transaction_id, batched)
     -> fraud.alerts (Kafka, key customer_id, transactional with the checkpoint)
State is RocksDB + checkpointed (cluster config), with a TTL so idle customers are forgotten.
"""

from __future__ import annotations

import json
import pickle
import sys

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table.expressions import col

from flink_app import config, events, sql
from flink_app.jobs.common import environments, job_log, now_iso

NAME = "fraud-detector"
DAY_MS = 86_400_000
TXN_TYPE = Types.ROW_NAMED(["customer_id", "event"], [Types.STRING(), Types.PICKLED_BYTE_ARRAY()])
ALERT_TYPE = Types.ROW_NAMED(
    [c for c, _ in sql.BRONZE_ALERTS_COLUMNS] + ["kafka_key"],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(), Types.STRING(),
     Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING()],
)


def parse(schema_path: str, max_bytes: int):  # type: ignore[no-untyped-def]
    state: dict[str, object] = {}

    def _parse(row):  # type: ignore[no-untyped-def]
        if "validator" not in state:
            state["validator"] = events.load_validator(schema_path)
        raw = bytes(row[0]) if row[0] is not None else None
        try:
            result = events.parse_event(raw, state["validator"], max_bytes)  # type: ignore[arg-type]
        except Exception:
            return
        if isinstance(result, events.Transaction):
            yield Row(result.customer_id, result)

    return _parse


class Score(KeyedProcessFunction):  # type: ignore[misc]
    def __init__(self, model_dir: str, model_version: str, threshold: float, state_ttl_days: int) -> None:
        self.model_dir = model_dir
        self.model_version = model_version
        self.threshold = threshold
        self.state_ttl_days = state_ttl_days
        self.scorer = None
        self.state = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        from flink_app.model.artifact import load_scorer

        self.scorer = load_scorer(self.model_dir, self.model_version, self.threshold)
        # State TTL cannot be configured from Python in thread mode (PyFlink 1.20 tries to start a
        # Py4J gateway inside the TaskManager), so idle customers are cleared by a daily timer instead.
        self.state = runtime_context.get_state(ValueStateDescriptor("customer", Types.PICKLED_BYTE_ARRAY()))
        self.last_seen = runtime_context.get_state(ValueStateDescriptor("last_seen_ms", Types.LONG()))

    def process_element(self, row, ctx):  # type: ignore[no-untyped-def]
        from flink_app.detection.rules import CustomerState

        txn = row[1]
        customer = self.state.value() or CustomerState()
        alerts = self.scorer.process(customer, txn)
        self.state.update(customer)
        now_ms = ctx.timer_service().current_processing_time()
        self.last_seen.update(now_ms)
        ttl_ms = self.state_ttl_days * DAY_MS
        ctx.timer_service().register_processing_time_timer((now_ms // DAY_MS + 1) * DAY_MS + ttl_ms)
        detected_at = now_iso()
        for alert in alerts:
            payload = alert.as_dict() | {"detected_at": detected_at}
            yield Row(alert.transaction_id, alert.transaction_id, alert.customer_id, alert.fraud_score,
                      alert.model_score, sql.pg_text_array(alert.rules_fired), alert.model_version,
                      json.dumps(payload, separators=(",", ":")), alert.event_time, detected_at, alert.customer_id)

    def on_timer(self, timestamp, ctx):  # type: ignore[no-untyped-def]
        last_seen = self.last_seen.value()
        if last_seen is None or timestamp - last_seen >= self.state_ttl_days * DAY_MS:
            self.state.clear()
            self.last_seen.clear()
        return iter(())


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or NAME)
    parser.add_argument("--alerts-topic", default="fraud.alerts")
    parser.add_argument("--alert-threshold", type=float, default=0.7)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model-version", default="v1")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    parser.add_argument("--state-ttl-days", type=int, default=30)
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    log = job_log(NAME)
    # Fail at submission, not on the TaskManager, if the artifact is missing or altered.
    from flink_app.model.artifact import load

    artifact = load(args.model_dir, args.model_version)
    pickle.dumps(artifact.metadata)

    env, t_env = environments()
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    t_env.execute_sql(sql.jdbc_sink_ddl("bronze_raw_fraud_alerts", sql.BRONZE_ALERTS_COLUMNS, ("alert_id",),
                                        jdbc.sink("bronze.raw_fraud_alerts")))
    t_env.execute_sql(sql.keyed_bytes_sink_ddl("alerts_sink", kafka.sink(args.alerts_topic, f"{args.group_id}-alerts")))

    raw = t_env.to_data_stream(t_env.from_path("source_raw"))
    txns = raw.flat_map(parse(str(events.schema_path()), args.max_event_bytes), output_type=TXN_TYPE) \
        .name("parse").uid("parse")
    alerts = txns.key_by(lambda row: row[0], key_type=Types.STRING()) \
        .process(Score(args.model_dir, args.model_version, args.alert_threshold, args.state_ttl_days),
                 output_type=ALERT_TYPE).name("score").uid("score")
    alerts_table = t_env.from_data_stream(alerts)
    statements = t_env.create_statement_set()
    statements.add_insert("bronze_raw_fraud_alerts",
                          alerts_table.select(*[col(c) for c, _ in sql.BRONZE_ALERTS_COLUMNS]))
    statements.add_insert("alerts_sink", alerts_table.select(col("kafka_key").alias("k"), col("payload").alias("v")))
    statements.attach_as_datastream()
    log.info("submitting %s model=%s threshold=%s", NAME, artifact.version, args.alert_threshold)
    env.execute(args.job_name or NAME)


if __name__ == "__main__":
    main(sys.argv[1:])
