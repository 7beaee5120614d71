"""Flink SQL DDL for the jobs' Kafka sources and JDBC/Kafka sinks (pure strings, unit-tested).

JDBC sinks are Flink SQL tables with a PRIMARY KEY, so the Postgres dialect writes
``INSERT ... ON CONFLICT (key) DO UPDATE``: replays after a restart upsert, never duplicate.
Timestamps, JSON payloads and text arrays are passed as strings with ``stringtype=unspecified`` on
the JDBC URL, so PostgreSQL casts them to the column's type (timestamptz, jsonb, text[]); the
connector itself cannot write arrays to PostgreSQL.

Bronze tables that take rows derived from outside input are written through their *inbox*
(:data:`INBOXES`, migration V012): an always-empty table with the same columns as text whose BEFORE
INSERT trigger upserts each row into the real table inside its own subtransaction and, if PostgreSQL
refuses the row, files it with the SQLSTATE and message in ``bronze.sink_rejects``. One refused row
then costs one dead-letter row instead of a failed JDBC batch and a job restart loop
(docs/adr/0009-no-message-stops-ingestion.md). Jobs name the real table; :meth:`JdbcOptions.sink`
picks the inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def with_clause(options: Mapping[str, str]) -> str:
    return "WITH (\n  " + ",\n  ".join(f"{_quote(k)} = {_quote(v)}" for k, v in options.items()) + "\n)"


JDBC_URL_DEFAULTS = (
    # string parameters take the column's type server-side (timestamptz, jsonb, text[])
    ("stringtype", "unspecified"),
    # the driver sends a batch as multi-row INSERTs (issue 13; measured in ADR 0009)
    ("reWriteBatchedInserts", "true"),
)

# Real bronze table -> the inbox the JDBC sink writes instead (streamflow/migrations/V012__sink_inboxes.sql).
INBOXES = {
    "bronze.raw_transactions": "bronze.raw_transactions_inbox",
    "bronze.raw_fraud_alerts": "bronze.raw_fraud_alerts_inbox",
}


def jdbc_url_for_strings(url: str) -> str:
    """Add the driver options the sinks rely on (:data:`JDBC_URL_DEFAULTS`) unless the URL sets them."""
    for key, value in JDBC_URL_DEFAULTS:
        if f"{key}=" not in url:
            url += ("&" if "?" in url else "?") + f"{key}={value}"
    return url


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap: str
    delivery: str = "exactly-once"  # or at-least-once

    def source(self, topic: str, group_id: str, value_format: str = "raw") -> dict[str, str]:
        options = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.bootstrap,
            "properties.group.id": group_id,
            "properties.client.id.prefix": f"{group_id}-{topic}",
            "properties.isolation.level": "read_committed",
            "properties.auto.offset.reset": "earliest",
            "scan.startup.mode": "group-offsets",
            "properties.commit.offsets.on.checkpoint": "true",
            "scan.topic-partition-discovery.interval": "60s",
        }
        if value_format == "raw":
            options["format"] = "raw"
        else:
            options.update({"format": "json", "json.ignore-parse-errors": "true",
                            "json.fail-on-missing-field": "false", "json.timestamp-format.standard": "ISO-8601"})
        return options

    def sink(self, topic: str, transactional_prefix: str) -> dict[str, str]:
        options = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.bootstrap,
            "key.format": "raw",
            "key.fields": "k",
            "value.format": "raw",
            "value.fields-include": "EXCEPT_KEY",
        }
        options.update(self._guarantee(transactional_prefix))
        return options

    def upsert_sink(self, topic: str, transactional_prefix: str) -> dict[str, str]:
        options = {
            "connector": "upsert-kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.bootstrap,
            "key.format": "json",
            "value.format": "json",
            "value.json.timestamp-format.standard": "ISO-8601",
            "key.json.timestamp-format.standard": "ISO-8601",
        }
        options.update(self._guarantee(transactional_prefix))
        return options

    def _guarantee(self, prefix: str) -> dict[str, str]:
        return {**self._batching(), **self._delivery(prefix)}

    @staticmethod
    def _batching() -> dict[str, str]:
        """Producer batching of every sink: wait up to 50 ms to fill batches of up to 256 KiB.

        Why: the aggregator writes about one metrics row per event on a replayed stream (its windows are
        sparse) and the broker's CPU grows with the number of produce requests, not bytes (ADR 0012). Under
        exactly-once nothing is visible before the checkpoint commits anyway; at-least-once alerts wait
        at most 50 ms more."""
        return {"properties.linger.ms": "50", "properties.batch.size": "262144"}

    def _delivery(self, prefix: str) -> dict[str, str]:
        if self.delivery == "exactly-once":
            return {
                "sink.delivery-guarantee": "exactly-once",
                "sink.transactional-id-prefix": prefix,
                # must stay below the broker's transaction.max.timeout.ms (15 min default)
                "properties.transaction.timeout.ms": "600000",
            }
        return {"sink.delivery-guarantee": "at-least-once"}


@dataclass(frozen=True)
class JdbcOptions:
    url: str
    user: str
    password: str
    batch_rows: int = 1000
    batch_interval: str = "1s"

    def sink(self, table: str) -> dict[str, str]:
        """Options of a JDBC upsert sink into ``table`` (through its inbox when it has one)."""
        return {
            "connector": "jdbc",
            "url": jdbc_url_for_strings(self.url),
            "table-name": INBOXES.get(table, table),
            "username": self.user,
            "password": self.password,
            "sink.buffer-flush.max-rows": str(self.batch_rows),
            "sink.buffer-flush.interval": self.batch_interval,
            "sink.max-retries": "5",
        }


def raw_source_ddl(name: str, options: Mapping[str, str]) -> str:
    """Original bytes plus where they came from (for bronze lineage and the DLQ)."""
    return (
        f"CREATE TABLE {name} (\n"
        "  `value` BYTES,\n"
        "  `topic` STRING METADATA VIRTUAL,\n"
        "  `partition` INT METADATA VIRTUAL,\n"
        "  `offset` BIGINT METADATA VIRTUAL\n"
        f") {with_clause(options)}"
    )


def keyed_bytes_sink_ddl(name: str, options: Mapping[str, str]) -> str:
    return f"CREATE TABLE {name} (\n  k STRING,\n  v STRING\n) {with_clause(options)}"


BRONZE_TRANSACTIONS_COLUMNS = (
    ("transaction_id", "STRING"),
    ("payload", "STRING"),
    ("kafka_topic", "STRING"),
    ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
    ("event_time", "STRING"),
    ("ingested_at", "STRING"),
)

BRONZE_ALERTS_COLUMNS = (
    ("alert_id", "STRING"),
    ("transaction_id", "STRING"),
    ("customer_id", "STRING"),
    ("fraud_score", "DOUBLE"),
    ("model_score", "DOUBLE"),
    ("rules_fired", "STRING"),
    ("model_version", "STRING"),
    ("payload", "STRING"),
    ("event_time", "STRING"),
    ("detected_at", "STRING"),
)

BRONZE_METRICS_COLUMNS = (
    ("window_start", "STRING"),
    ("window_end", "STRING"),
    ("store_id", "STRING"),
    ("txn_count", "BIGINT"),
    ("amount_sum", "DECIMAL(18, 2)"),
    ("alert_count", "BIGINT"),
    ("updated_at", "STRING"),
)


def jdbc_sink_ddl(name: str, columns: tuple[tuple[str, str], ...], primary_key: tuple[str, ...],
                  options: Mapping[str, str]) -> str:
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in columns)
    pk = ", ".join(f"`{c}`" for c in primary_key)
    return f"CREATE TABLE {name} (\n  {cols},\n  PRIMARY KEY ({pk}) NOT ENFORCED\n) {with_clause(options)}"


def pg_text_array(values: list[str] | tuple[str, ...]) -> str:
    """A PostgreSQL array literal ('{a,"b c"}') for a text[] column written as a string."""
    def element(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(v) for v in values) + "}"
