from __future__ import annotations

from flink_app import sql


def test_jdbc_sink_is_an_upsert_table_with_string_casting():
    jdbc = sql.JdbcOptions("jdbc:postgresql://h:1/db", "u", "p", batch_rows=500, batch_interval="2s")
    ddl = sql.jdbc_sink_ddl("t", sql.BRONZE_TRANSACTIONS_COLUMNS, ("transaction_id",), jdbc.sink("bronze.x"))
    assert "PRIMARY KEY (`transaction_id`) NOT ENFORCED" in ddl
    assert "'url' = 'jdbc:postgresql://h:1/db?stringtype=unspecified&reWriteBatchedInserts=true'" in ddl
    assert "'sink.buffer-flush.max-rows' = '500'" in ddl and "'sink.buffer-flush.interval' = '2s'" in ddl


def test_driver_options_are_added_once_and_never_override_the_url():
    assert sql.jdbc_url_for_strings("jdbc:postgresql://h/db?ssl=true") == \
        "jdbc:postgresql://h/db?ssl=true&stringtype=unspecified&reWriteBatchedInserts=true"
    url = "jdbc:postgresql://h/db?stringtype=unspecified&reWriteBatchedInserts=false"
    assert sql.jdbc_url_for_strings(url) == url
    assert sql.jdbc_url_for_strings(sql.jdbc_url_for_strings("jdbc:postgresql://h/db")).count("?") == 1


def test_bronze_tables_fed_from_input_are_written_through_their_inbox():
    """The sink of a table with an inbox targets the inbox (V012 trigger routes and dead-letters rows)."""
    jdbc = sql.JdbcOptions("jdbc:postgresql://h/db", "u", "p")
    assert jdbc.sink("bronze.raw_transactions")["table-name"] == "bronze.raw_transactions_inbox"
    assert jdbc.sink("bronze.raw_fraud_alerts")["table-name"] == "bronze.raw_fraud_alerts_inbox"
    assert jdbc.sink("bronze.realtime_metrics")["table-name"] == "bronze.realtime_metrics"


def test_every_inbox_exists_in_the_migration_with_its_tables_columns():
    from pathlib import Path

    migrations = Path(__file__).resolve().parents[2] / "streamflow" / "migrations"
    migration = (migrations / "V012__sink_inboxes.sql").read_text()
    for table, columns in (("bronze.raw_transactions", sql.BRONZE_TRANSACTIONS_COLUMNS),
                           ("bronze.raw_fraud_alerts", sql.BRONZE_ALERTS_COLUMNS)):
        inbox = sql.INBOXES[table]
        body = migration.split(f"CREATE TABLE IF NOT EXISTS {inbox} (", 1)[1].split(");", 1)[0]
        assert [line.split()[0] for line in body.strip().splitlines()] == [c for c, _ in columns]
        assert f"BEFORE INSERT ON {inbox}" in migration


def test_kafka_source_commits_offsets_per_group_and_reads_committed():
    options = sql.KafkaOptions("k:9092").source("transactions.raw", "g1")
    assert options["properties.group.id"] == "g1" and options["scan.startup.mode"] == "group-offsets"
    assert options["properties.isolation.level"] == "read_committed" and options["format"] == "raw"


def test_kafka_sink_delivery_guarantees():
    exactly = sql.KafkaOptions("k:9092").sink("dlq.errors", "g1-dlq")
    assert exactly["sink.delivery-guarantee"] == "exactly-once" and exactly["sink.transactional-id-prefix"] == "g1-dlq"
    assert int(exactly["properties.transaction.timeout.ms"]) <= 900_000
    assert sql.KafkaOptions("k", "at-least-once").sink("t", "p")["sink.delivery-guarantee"] == "at-least-once"


def test_every_kafka_sink_batches_its_produce_requests():
    """Each sink (both guarantees, plain and upsert) lingers briefly to fill large batches: the broker's CPU
    follows the number of produce requests (ADR 0012: Kafka's CPU per event halved in the pipeline bench),
    and the linger stays far below what a reader could notice next to the 10 s checkpoint commit."""
    for delivery in ("exactly-once", "at-least-once"):
        options = sql.KafkaOptions("k:9092", delivery)
        for sink in (options.sink("fraud.alerts", "p"), options.upsert_sink("metrics.realtime", "p")):
            assert 0 < int(sink["properties.linger.ms"]) <= 100
            assert int(sink["properties.batch.size"]) >= 64 * 1024


def test_text_array_literal_quotes_elements():
    assert sql.pg_text_array(["velocity_burst", 'a "b"']) == '{"velocity_burst","a \\"b\\""}'
    assert sql.pg_text_array([]) == "{}"


def test_quotes_in_options_are_escaped():
    assert sql.with_clause({"password": "it's"}) == "WITH (\n  'password' = 'it''s'\n)"  # pragma: allowlist secret
