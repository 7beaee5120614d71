"""The fraud_detector's graph with its Python work switched on stage by stage (issue 13, step 4).

Same source, SQL key extraction and Java keyBy as ``flink_app.jobs.fraud_detector``; the keyed
Python operator does, per ``--stage``:

- ``noop``: nothing (what Kafka, JSON_VALUE, the keyBy shuffle and one JVM->Python call cost);
- ``state``: + one read and one write of the flat keyed state (``flink_app.detection.keyed``);
- ``parse``: + ``events.parse_event`` of the raw bytes;
- ``score``: + ``FraudScorer.process`` and the expiry timer: the job's full per-event work.

Output goes to a blackhole sink. Submitted by ``bench/flink_stages.py`` through the local runtime.
"""

from __future__ import annotations

import sys
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor

from flink_app import config, events, sql
from flink_app.detection import keyed
from flink_app.jobs.common import environments
from flink_app.jobs.fraud_detector import CUSTOMER_ID_SQL, keyed_by_first_field

STAGES = ("noop", "state", "parse", "score")


class Stage(KeyedProcessFunction):  # type: ignore[misc]
    def __init__(self, stage: str, schema_path: str, model_dir: str) -> None:
        self.stage = STAGES.index(stage)
        self.schema_path = schema_path
        self.model_dir = model_dir
        self.validator: Any = None
        self.scorer: Any = None
        self.state: Any = None

    def open(self, runtime_context):  # type: ignore[no-untyped-def]
        from flink_app.model.artifact import load_scorer

        self.validator = events.load_validator(self.schema_path)
        self.scorer = load_scorer(self.model_dir)
        self.state = runtime_context.get_state(ValueStateDescriptor("customer_flat", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, raw, ctx):  # type: ignore[no-untyped-def]
        if self.stage == 0:
            return
        customer, timer_ms = keyed.load(self.state.value())
        if self.stage >= 2:
            txn = events.parse_event(bytes(raw), self.validator)
            if self.stage >= 3 and isinstance(txn, events.Transaction) and txn.customer_id == ctx.get_current_key():
                self.scorer.process(customer, txn)
                now_ms = ctx.timer_service().current_processing_time()
                new_timer = keyed.timer_to_register(now_ms, timer_ms, 30)
                if new_timer is not None:
                    ctx.timer_service().register_processing_time_timer(new_timer)
                    timer_ms = new_timer
        self.state.update(keyed.store(customer, 0, timer_ms or 0))
        yield from ()

    def on_timer(self, timestamp, ctx):  # type: ignore[no-untyped-def]
        return iter(())


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or "detector-skeleton")
    parser.add_argument("--stage", choices=STAGES, default="noop")
    parser.add_argument("--alerts-topic", default="fraud.alerts")
    parser.add_argument("--alert-threshold", type=float, default=0.7)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model-version", default="v1")
    parser.add_argument("--max-event-bytes", type=int, default=events.DEFAULT_MAX_EVENT_BYTES)
    parser.add_argument("--state-ttl-days", type=int, default=30)
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    env, t_env = environments()
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    table = t_env.sql_query(f"SELECT {CUSTOMER_ID_SQL} AS customer_id, `value` FROM source_raw "
                            f"WHERE {CUSTOMER_ID_SQL} IS NOT NULL")
    out = keyed_by_first_field(t_env, table).process(
        Stage(args.stage, str(events.schema_path()), args.model_dir), output_type=Types.STRING()).name(args.stage)
    t_env.execute_sql("CREATE TABLE sink (v STRING) WITH ('connector' = 'blackhole')")
    statements = t_env.create_statement_set()
    statements.add_insert("sink", t_env.from_data_stream(out))
    statements.attach_as_datastream()
    env.execute(args.job_name or "detector-skeleton")


if __name__ == "__main__":
    main(sys.argv[1:])
