"""transaction_processor: every event from ``transactions.raw`` ends in bronze or in the DLQ.

Kafka (raw bytes + topic/partition/offset metadata, offsets committed on checkpoint)
  -> Java (io.streamflow.flink.CanonicalRoute, flink_app.jvm_functions): an event of the canonical shape
     (flink_app.shape_check, proven sound), within the byte limit and the future-skew bound, becomes
     its bronze row here, the row Python would write (tests/flink/test_jvm_functions.py); no Python call
  -> every other record: Python ProcessFunction: decode + validate against the generator's schema and
     the sink limits (flink_app.events: strict JSON, no NUL/lone surrogates, bounded ids/amount/event time)
     -> valid:   bronze.raw_transactions (JDBC upsert on transaction_id, batched, flushed on checkpoint,
                 through the table's inbox: a row PostgreSQL still refuses lands in bronze.sink_rejects)
     -> invalid: dlq.errors (side output; original bytes base64, reason, partition/offset)
The Python function never raises on bad input and the sink never fails on a bad row, so a poison
message cannot crash-loop the job (docs/adr/0009-no-message-stops-ingestion.md).
"""

from __future__ import annotations

import json
import sys

from pyflink.common import Row, Types
from pyflink.datastream import OutputTag, ProcessFunction

from flink_app import config, events, jvm_functions, sql
from flink_app.jobs.common import EventParsing, environments, job_log, now_iso

NAME = "transaction-processor"

BRONZE_TYPE = Types.ROW_NAMED(
    [c for c, _ in sql.BRONZE_TRANSACTIONS_COLUMNS],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.INT(), Types.LONG(), Types.STRING(), Types.STRING()],
)
KV_TYPE = Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.STRING()])
DLQ_TAG = OutputTag("dlq", KV_TYPE)


class Validate(EventParsing, ProcessFunction):  # type: ignore[misc]
    def __init__(self, schema_path: str, max_bytes: int,
                 max_future_skew_s: float = events.DEFAULT_MAX_FUTURE_SKEW_S) -> None:
        super().__init__(schema_path, max_bytes, max_future_skew_s)

    def process_element(self, row, ctx):  # type: ignore[no-untyped-def]
        raw, topic, partition, offset = row[0], row[1], row[2], row[3]
        raw = bytes(raw) if raw is not None else None
        result = self.parse(raw)
        bronze = None
        if isinstance(result, events.Transaction):
            try:  # a value that cannot be serialised goes to the DLQ, not up the stack
                bronze = Row(*events.bronze_row(result, topic, partition, offset, now_iso()))
            except Exception as error:  # a bug of ours, never the input's fault: keep the message, say why
                result = events.Invalid(events.INTERNAL_ERROR, f"{type(error).__name__}: {error}"[:500])
        if bronze is not None:
            yield bronze
            return
        record = events.dlq_record(raw, result, topic=topic, partition=partition, offset=offset)
        yield DLQ_TAG, Row(record["error_id"], json.dumps(record, separators=(",", ":")))


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or NAME)
    parser.add_argument("--dlq-topic", default="dlq.errors")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    log = job_log(NAME)

    env, t_env = environments()
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    t_env.execute_sql(sql.jdbc_sink_ddl("bronze_raw_transactions", sql.BRONZE_TRANSACTIONS_COLUMNS,
                                        ("transaction_id",), jdbc.sink("bronze.raw_transactions")))
    t_env.execute_sql(sql.keyed_bytes_sink_ddl("dlq_sink", kafka.sink(args.dlq_topic, f"{args.group_id}-dlq")))

    raw = t_env.to_data_stream(t_env.from_path("source_raw"))
    canonical, others = jvm_functions.split_canonical(raw, "BRONZE", BRONZE_TYPE, args.max_event_bytes,
                                                      args.max_future_skew_seconds)
    validate = Validate(str(events.schema_path()), args.max_event_bytes, args.max_future_skew_seconds)
    validated = others.process(validate, output_type=BRONZE_TYPE).name("validate").uid("validate")
    statements = t_env.create_statement_set()
    # one sink per path (both upsert into bronze): a union would move every row to another task
    statements.add_insert("bronze_raw_transactions", t_env.from_data_stream(canonical))
    statements.add_insert("bronze_raw_transactions", t_env.from_data_stream(validated))
    statements.add_insert("dlq_sink", t_env.from_data_stream(validated.get_side_output(DLQ_TAG)))
    statements.attach_as_datastream()
    log.info("submitting %s source=%s group=%s dlq=%s", NAME, args.source_topic, args.group_id, args.dlq_topic)
    env.execute(args.job_name or NAME)


if __name__ == "__main__":
    main(sys.argv[1:])
