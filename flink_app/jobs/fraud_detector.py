"""fraud_detector: per-customer scoring with keyed state; alerts to bronze and ``fraud.alerts``.

With the default weights (every rule alone raises an alert, the model alone cannot:
``candidates.rules_decide_alerts``) the rules run in Java and Python sees only the alerts:

Kafka (raw bytes)
  -> Java (io.streamflow.flink.CanonicalRoute): an event of the canonical shape becomes its typed row;
     every other record: Python parse + validate (events.parse_event; invalid ones are skipped, the DLQ
     is the processor's job) into the same row
  -> keyBy(customer_id) in Java -> io.streamflow.flink.FraudRulesFunction: the five rules and the
     customer's state (flink_app/detection/rules.py in Java, same arithmetic; daily expiry timer);
     emits one candidate per alert (2-3 % of the events)
  -> Python (ScoreCandidate): the model's score for each alert (flink_app.detection.candidates)
  -> bronze.raw_fraud_alerts and fraud.alerts as below.
A record the Python parse takes may be scored a few milliseconds out of its arrival order relative to
the customer's canonical events (two paths meet again at the keyBy); the generator writes none.
tests/flink/test_jvm_functions.py proves the Java rules raise FraudScorer's alerts, to the bit.

Otherwise (weights where the model decides) the all-Python graph below runs, as before:
Kafka (raw bytes) -> SQL: customer_key = TO_BASE64(JSON_VALUE(value, '$.customer_id')) (Java; NULL -> dropped)
  -> keyBy(customer_key) in Java (no Python key-selector operator, no pickled hand-off)
  -> KeyedProcessFunction (the only Python operator): parse + validate the raw bytes exactly as the
     transaction_processor does (invalid events are skipped here: the DLQ is the processor's job),
     then FraudScorer over the customer's state (five rules + IsolationForest via a numpy forest,
     noisy-OR into fraud_score in [0, 1])
  -> alerts (score >= --alert-threshold, incl. retroactive alerts for the earlier txns of a burst)
     -> bronze.raw_fraud_alerts (JDBC upsert on alert_id = transaction_id, batched)
     -> fraud.alerts (Kafka, key customer_id, transactional with the checkpoint)
State (one flat value per customer) is checkpointed (backend from the cluster config); a daily
processing-time timer forgets customers idle for --state-ttl-days.

Why this shape (docs/adr/0012-streaming-throughput.md): every record that enters a Python operator
costs a JVM->Python call and a conversion, and every Python-typed record that crosses a keyBy is
pickled and unpickled. The earlier graph (parse operator -> Python key selector -> pickled
``Transaction`` -> keyed operator) paid that twice per event; keying in Java on a field extracted by
SQL pays it once.
"""

from __future__ import annotations

import json
import sys

from pyflink.common import Row, Types
from pyflink.datastream import FlatMapFunction, KeyedProcessFunction, KeyedStream, MapFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment, Table
from pyflink.table.expressions import col

from flink_app import config, events, jvm_functions, sql
from flink_app.detection import candidates, keyed
from flink_app.detection.rules import RuleConfig
from flink_app.detection.scoring import ScoringConfig
from flink_app.jobs.common import EventParsing, environments, job_log, now_iso

NAME = "fraud-detector"
#: The typed transaction the Java rules read (io.streamflow.flink.CanonicalRoute.Output.TRANSACTION).
TXN_TYPE = Types.ROW_NAMED(
    ["customer_id", "transaction_id", "store_id", "store_category", "amount", "event_time", "event_ts", "lat", "lon"],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.STRING(), Types.DOUBLE(),
     Types.DOUBLE(), Types.DOUBLE()],
)
CANDIDATE_TYPE = Types.ROW_NAMED(
    list(candidates.CANDIDATE_FIELDS),
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(),
     Types.DOUBLE(), Types.STRING(), Types.BOOLEAN(), Types.INT(), Types.DOUBLE(), Types.DOUBLE(), Types.BOOLEAN(),
     Types.DOUBLE(), Types.DOUBLE(), Types.DOUBLE(), Types.INT(), Types.INT(), Types.BOOLEAN()],
)
KEYED_INPUT_TYPE = Types.ROW_NAMED(["customer_key", "value"], [Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
ALERT_TYPE = Types.ROW_NAMED(
    [c for c, _ in sql.BRONZE_ALERTS_COLUMNS] + ["kafka_key"],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(), Types.DOUBLE(), Types.STRING(),
     Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING()],
)
CUSTOMER_ID_SQL = "JSON_VALUE(CAST(`value` AS STRING), '$.customer_id')"
#: The key that crosses into Python is the base64 of the customer_id's UTF-8 bytes, never the id itself.
#: Why (issue 17): pemja converts a Java String into a Python str through UTF-16, which fails on an
#: unpaired surrogate (JSON_VALUE decodes ``"\\ud800"`` into one: UnicodeDecodeError before
#: process_element runs, a restart loop on one message) and silently drops a leading U+FEFF (the
#: key then differs from the parsed id). Base64 is ASCII: every key arrives intact, and
#: ``keyed.customer_key`` computes the same string from the parsed event.
KEYED_INPUT_SQL = ("SELECT TO_BASE64(customer_id) AS customer_key, `value` FROM "
                   f"(SELECT {CUSTOMER_ID_SQL} AS customer_id, `value` FROM source_raw) WHERE customer_id IS NOT NULL")


def keyed_by_first_field(t_env: StreamTableEnvironment, table: Table) -> KeyedStream:
    """``table`` (key STRING, value BYTES) as a stream keyed by its first field, partitioned in Java.

    PyFlink's ``key_by`` always inserts a Python operator that computes the key and wraps each record
    in ``Row(key, record)``. The rows here already have that shape, so the job does what ``key_by``
    does after its Python operator: Java ``keyBy`` with PyFlink's own ``KeyByKeySelector`` (field 0),
    and the KeyedStream wrapper PyFlink builds (pyflink/datastream/data_stream.py, 1.20). The Python
    keyed operator then receives field 1 (the raw bytes). ``to_append_stream`` (not
    ``to_data_stream``) gives the RowTypeInfo the embedded keyed operator requires.
    """
    stream = t_env.to_append_stream(table, KEYED_INPUT_TYPE)
    gateway = get_gateway()
    j_keyed = stream._j_data_stream.keyBy(gateway.jvm.KeyByKeySelector(),
                                          Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, KEYED_INPUT_TYPE, stream)


def alert_row(alert, detected_at: str) -> Row:  # type: ignore[no-untyped-def]
    """The ALERT_TYPE row of an alert (bronze.raw_fraud_alerts' columns + the Kafka key)."""
    payload = alert.as_dict() | {"detected_at": detected_at}
    return Row(alert.transaction_id, alert.transaction_id, alert.customer_id, alert.fraud_score, alert.model_score,
               sql.pg_text_array(alert.rules_fired), alert.model_version, json.dumps(payload, separators=(",", ":")),
               alert.event_time, detected_at, alert.customer_id)


class ParseTransaction(EventParsing, FlatMapFunction):  # type: ignore[misc]
    """A record the Java fast path did not take: the typed transaction (TXN_TYPE) if it is valid (the
    invalid ones are the processor's to dead-letter)."""

    def flat_map(self, row):  # type: ignore[no-untyped-def]
        txn = self.parse(row[0])
        if isinstance(txn, events.Transaction):
            yield Row(txn.customer_id, txn.transaction_id, txn.store_id, txn.store_category, txn.amount,
                      txn.event_time, txn.event_ts, txn.lat, txn.lon)


class ScoreCandidate(MapFunction):  # type: ignore[misc]
    """An alert the Java rules raised, scored by the model (flink_app.detection.candidates)."""

    def __init__(self, model_dir: str, model_version: str, threshold: float) -> None:
        self.model_dir = model_dir
        self.model_version = model_version
        self.threshold = threshold
        self.scorer = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        from flink_app.model.artifact import load_scorer

        self.scorer = load_scorer(self.model_dir, self.model_version, self.threshold)

    def map(self, row):  # type: ignore[no-untyped-def]
        return alert_row(candidates.alert_from_candidate(row, self.scorer), now_iso())


class Score(KeyedProcessFunction):  # type: ignore[misc]
    """Parse + validate the raw event, then FraudScorer over one keyed value per customer.

    Per event: one JVM->Python call, one state read, one state write (a flat tuple pickled by
    PyFlink, ``flink_app.detection.keyed``), and a timer only when the customer's expiry day moves.
    """

    def __init__(self, model_dir: str, model_version: str, threshold: float, state_ttl_days: int,
                 schema_path: str, max_bytes: int, max_future_skew_s: float) -> None:
        self.model_dir = model_dir
        self.model_version = model_version
        self.threshold = threshold
        self.state_ttl_days = state_ttl_days
        self.schema_path = schema_path
        self.max_bytes = max_bytes
        self.max_future_skew_s = max_future_skew_s
        self.validator = None
        self.scorer = None
        self.state = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        from flink_app.model.artifact import load_scorer

        self.validator = events.load_validator(self.schema_path)
        self.scorer = load_scorer(self.model_dir, self.model_version, self.threshold)
        # "customer_flat", not the earlier "customer" (a pickled dataclass): restoring an older
        # checkpoint leaves that state unread, and customers start a fresh history once.
        self.state = runtime_context.get_state(ValueStateDescriptor("customer_flat", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, raw, ctx):  # type: ignore[no-untyped-def]
        try:
            txn = events.parse_event(bytes(raw) if raw is not None else None, self.validator, self.max_bytes,
                                     max_future_skew_s=self.max_future_skew_s)
        except Exception:  # never fail the job on input; the processor DLQs it
            return
        if not isinstance(txn, events.Transaction):
            return
        if keyed.customer_key(txn.customer_id) != ctx.get_current_key():
            # JSON_VALUE and the strict parser disagree (e.g. a duplicated "customer_id" key): the
            # event must not be scored against another customer's state; the processor still stores it
            return
        customer, timer_ms = keyed.load(self.state.value())
        alerts = self.scorer.process(customer, txn)
        timers = ctx.timer_service()
        now_ms = timers.current_processing_time()
        new_timer = keyed.timer_to_register(now_ms, timer_ms, self.state_ttl_days)
        if new_timer is not None:
            timers.register_processing_time_timer(new_timer)
            timer_ms = new_timer
        self.state.update(keyed.store(customer, now_ms, timer_ms))
        if not alerts:
            return
        detected_at = now_iso()
        for alert in alerts:
            yield alert_row(alert, detected_at)

    def on_timer(self, timestamp, ctx):  # type: ignore[no-untyped-def]
        if keyed.expired(self.state.value(), timestamp, self.state_ttl_days):
            self.state.clear()
        return iter(())


def java_rules_graph(t_env: StreamTableEnvironment, args):  # type: ignore[no-untyped-def]
    """The alerts, with the rules in Java and the model in Python (the module docstring's first graph)."""
    raw = t_env.to_data_stream(t_env.from_path("source_raw"))
    canonical, others = jvm_functions.split_canonical(raw, "TRANSACTION", TXN_TYPE, args.max_event_bytes,
                                                      args.max_future_skew_seconds)
    parsed = (others.flat_map(ParseTransaction(str(events.schema_path()), args.max_event_bytes,
                                               args.max_future_skew_seconds), output_type=TXN_TYPE)
              .name("parse").uid("parse"))
    found = jvm_functions.fraud_rules(canonical.union(parsed), RuleConfig(), args.state_ttl_days, CANDIDATE_TYPE)
    return (found.map(ScoreCandidate(args.model_dir, args.model_version, args.alert_threshold), output_type=ALERT_TYPE)
            .name("score").uid("score-model"))


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
    # Fail at submission, not on the TaskManager, if the artifact is missing, altered or was trained with
    # another scikit-learn (verified without unpickling: importing sklearn here cost ~3 s of every deploy).
    from flink_app.model.artifact import verify

    metadata = verify(args.model_dir, args.model_version)

    env, t_env = environments()
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    t_env.execute_sql(sql.jdbc_sink_ddl("bronze_raw_fraud_alerts", sql.BRONZE_ALERTS_COLUMNS, ("alert_id",),
                                        jdbc.sink("bronze.raw_fraud_alerts")))
    t_env.execute_sql(sql.keyed_bytes_sink_ddl("alerts_sink", kafka.sink(args.alerts_topic, f"{args.group_id}-alerts")))

    java_rules = candidates.rules_decide_alerts(ScoringConfig(threshold=args.alert_threshold))
    if java_rules:
        alerts = java_rules_graph(t_env, args)
    else:
        keyed_raw = t_env.sql_query(KEYED_INPUT_SQL)
        score = Score(args.model_dir, args.model_version, args.alert_threshold, args.state_ttl_days,
                      str(events.schema_path()), args.max_event_bytes, args.max_future_skew_seconds)
        alerts = (keyed_by_first_field(t_env, keyed_raw).process(score, output_type=ALERT_TYPE)
                  .name("score").uid("score"))
    alerts_table = t_env.from_data_stream(alerts)
    statements = t_env.create_statement_set()
    statements.add_insert("bronze_raw_fraud_alerts",
                          alerts_table.select(*[col(c) for c, _ in sql.BRONZE_ALERTS_COLUMNS]))
    statements.add_insert("alerts_sink", alerts_table.select(col("kafka_key").alias("k"), col("payload").alias("v")))
    statements.attach_as_datastream()
    log.info("submitting %s model=%s threshold=%s rules=%s", NAME, metadata["version"], args.alert_threshold,
             "java (Python scores the alerts)" if java_rules else "python (the model decides alerts)")
    env.execute(args.job_name or NAME)


if __name__ == "__main__":
    main(sys.argv[1:])
