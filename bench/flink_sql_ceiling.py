"""A Kafka -> bronze Flink job with no Python at run time: the ceiling of the Java side (issue 13, step 3).

Submitted by ``bench/flink_stages.py`` through the local runtime like the real jobs (PythonDriver
runs this module only to build the plan; no UDF, so no Python runs per record). It reads the raw
bytes, takes ``transaction_id`` and ``event_time`` with ``JSON_VALUE`` (Java) and either discards
the rows (``--sink blackhole``) or upserts them into ``bronze.raw_transactions`` exactly like the
transaction_processor's sink (``--sink jdbc``; ``--rewrite-batched`` sets the PostgreSQL driver's
``reWriteBatchedInserts=true``, ``--table`` picks the target). There is no schema validation: it
measures what reading, one JSON parse in Java and the sink cost, i.e. the most any design can reach
on this machine.
"""

from __future__ import annotations

import sys

from flink_app import config, shape_check, sql
from flink_app.jobs.common import environments


def main(argv: list[str] | None = None) -> None:
    parser = config.base_parser(__doc__ or "sql-ceiling")
    parser.add_argument("--sink", choices=("blackhole", "jdbc"), default="jdbc")
    parser.add_argument("--rewrite-batched", action="store_true")
    parser.add_argument("--dlq-topic", default="dlq.errors")  # the processor spec's arguments, unused here
    parser.add_argument("--max-event-bytes", type=int, default=65_536)
    parser.add_argument("--shape-check", action="store_true",
                        help="keep only events of flink_app.shape_check.SHAPE (Java regex), as a Java validator would")
    parser.add_argument("--table", default="bronze.raw_transactions",
                        help="JDBC target (bronze.raw_transactions_inbox: the trigger-routed inbox of ADR 0009)")
    args = config.parse(parser, argv)
    endpoints = config.Endpoints.from_env()
    _env, t_env = environments()
    t_env.get_config().set("pipeline.name", args.job_name or "sql-ceiling")
    kafka = sql.KafkaOptions(endpoints.kafka_bootstrap, args.kafka_delivery)
    jdbc = sql.JdbcOptions(endpoints.jdbc_url, endpoints.jdbc_user, endpoints.jdbc_password,
                           args.sink_batch_size, args.sink_batch_interval)
    sink_options = jdbc.sink(args.table) | {
        "table-name": args.table,  # exactly the table named, whatever sql.INBOXES maps it to
        "url": f"{endpoints.jdbc_url}?stringtype=unspecified&reWriteBatchedInserts={str(args.rewrite_batched).lower()}",
    }
    t_env.execute_sql(sql.raw_source_ddl("source_raw", kafka.source(args.source_topic, args.group_id)))
    if args.sink == "jdbc":
        t_env.execute_sql(sql.jdbc_sink_ddl("sink", sql.BRONZE_TRANSACTIONS_COLUMNS, ("transaction_id",),
                                            sink_options))
    else:
        columns = ",\n  ".join(f"`{c}` {t}" for c, t in sql.BRONZE_TRANSACTIONS_COLUMNS)
        t_env.execute_sql(f"CREATE TABLE sink (\n  {columns}\n) WITH ('connector' = 'blackhole')")
    shape = f" WHERE REGEXP(payload, '^{shape_check.SHAPE}$')" if args.shape_check else ""
    t_env.execute_sql(
        "INSERT INTO sink SELECT JSON_VALUE(payload, '$.transaction_id'), payload, `topic`, `partition`, `offset`, "
        "JSON_VALUE(payload, '$.event_time'), DATE_FORMAT(CURRENT_TIMESTAMP, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') "
        "FROM (SELECT CAST(`value` AS STRING) AS payload, `topic`, `partition`, `offset` FROM source_raw)" + shape
    )


if __name__ == "__main__":
    main(sys.argv[1:])
