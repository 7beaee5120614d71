-- Issue 17: no row can stop ingestion (docs/adr/0009-no-message-stops-ingestion.md).
--
-- The Flink JDBC sinks of bronze.raw_transactions and bronze.raw_fraud_alerts write into an "inbox"
-- (flink_app/sql.py INBOXES) instead of the real table. An inbox has the real table's column names, but
-- as text / integer / double columns that take any value the job can send, and a primary key only so
-- that Flink's generated `INSERT ... ON CONFLICT (key) DO UPDATE` is accepted. Its BEFORE INSERT row
-- trigger upserts the row into the real table inside a PL/pgSQL EXCEPTION block (one subtransaction per
-- row) and returns NULL, so the inbox stays empty. If PostgreSQL refuses the row for its *data* (SQLSTATE
-- class 22 data exception, 23 integrity constraint, 54 program limit, e.g. invalid json, a timestamp out
-- of range, a key too large for the btree), the row goes to bronze.sink_rejects with the SQLSTATE and
-- message, and the rest of the JDBC batch commits. Any other error (table missing, permission, disk full,
-- deadlock, serialization, cancel) still fails the batch: that is the platform's fault, not the row's,
-- and Flink's retry/restart is the right answer to it.
--
-- Readers are unaffected: bronze.raw_transactions / bronze.raw_fraud_alerts keep their columns and
-- semantics (upsert on the natural key, last write wins). Idempotent: safe to apply again.

CREATE TABLE IF NOT EXISTS bronze.sink_rejects (
    reject_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_table       text        NOT NULL,          -- the bronze table that refused the row
    row_key            text        NOT NULL,          -- its natural key as sent (transaction_id, alert_id)
    row_data           jsonb       NOT NULL,          -- the whole row as sent to the inbox (all values as sent)
    sqlstate           text        NOT NULL,          -- PostgreSQL's error code, e.g. 22P02
    error_message      text        NOT NULL,          -- SQLERRM
    error_detail       text,                          -- PG_EXCEPTION_DETAIL, when PostgreSQL gives one
    attempts           integer     NOT NULL DEFAULT 1, -- how often the same key was refused (replays count)
    first_rejected_at  timestamptz NOT NULL DEFAULT now(),
    last_rejected_at   timestamptz NOT NULL DEFAULT now()
);
-- One row per refused key (a replay after a restart updates it, like the bronze upsert); hashed so that
-- no key is too large for the index.
CREATE UNIQUE INDEX IF NOT EXISTS sink_rejects_key_idx ON bronze.sink_rejects (target_table, md5(row_key));
CREATE INDEX IF NOT EXISTS sink_rejects_last_rejected_at_idx ON bronze.sink_rejects (last_rejected_at);

CREATE OR REPLACE FUNCTION bronze.file_sink_reject(
    p_target text, p_key text, p_row jsonb, p_sqlstate text, p_message text, p_detail text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bronze.sink_rejects AS r (target_table, row_key, row_data, sqlstate, error_message, error_detail)
    VALUES (p_target, coalesce(p_key, ''), p_row, p_sqlstate, p_message, p_detail)
    ON CONFLICT (target_table, md5(row_key)) DO UPDATE SET
        row_data = EXCLUDED.row_data, sqlstate = EXCLUDED.sqlstate, error_message = EXCLUDED.error_message,
        error_detail = EXCLUDED.error_detail, attempts = r.attempts + 1, last_rejected_at = now();
    RAISE WARNING 'bronze.sink_rejects: % refused the row with key % (%: %); the row is kept in bronze.sink_rejects, fix the producer or the table and re-insert it',
        p_target, left(coalesce(p_key, ''), 80), p_sqlstate, p_message;
END
$$;

-- bronze.raw_transactions ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS bronze.raw_transactions_inbox (
    transaction_id   text PRIMARY KEY,  -- never holds a row: the key only makes ON CONFLICT (transaction_id) valid
    payload          text,
    kafka_topic      text,
    kafka_partition  integer,
    kafka_offset     bigint,
    event_time       text,
    ingested_at      text
);

CREATE OR REPLACE FUNCTION bronze.raw_transactions_inbox_route() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_detail text;
BEGIN
    BEGIN
        INSERT INTO bronze.raw_transactions AS t
            (transaction_id, payload, kafka_topic, kafka_partition, kafka_offset, event_time, ingested_at)
        VALUES (NEW.transaction_id, NEW.payload::jsonb, NEW.kafka_topic, NEW.kafka_partition, NEW.kafka_offset,
                NEW.event_time::timestamptz, coalesce(NEW.ingested_at::timestamptz, now()))
        ON CONFLICT (transaction_id) DO UPDATE SET
            payload = EXCLUDED.payload, kafka_topic = EXCLUDED.kafka_topic,
            kafka_partition = EXCLUDED.kafka_partition, kafka_offset = EXCLUDED.kafka_offset,
            event_time = EXCLUDED.event_time, ingested_at = EXCLUDED.ingested_at;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
        GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
        PERFORM bronze.file_sink_reject('bronze.raw_transactions', NEW.transaction_id, to_jsonb(NEW),
                                        SQLSTATE, SQLERRM, nullif(v_detail, ''));
    END;
    RETURN NULL;  -- the inbox stays empty
END
$$;

CREATE OR REPLACE TRIGGER raw_transactions_inbox_route
    BEFORE INSERT ON bronze.raw_transactions_inbox
    FOR EACH ROW EXECUTE FUNCTION bronze.raw_transactions_inbox_route();

-- bronze.raw_fraud_alerts ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS bronze.raw_fraud_alerts_inbox (
    alert_id         text PRIMARY KEY,  -- never holds a row: the key only makes ON CONFLICT (alert_id) valid
    transaction_id   text,
    customer_id      text,
    fraud_score      double precision,
    model_score      double precision,
    rules_fired      text,              -- a text[] literal, cast in the trigger
    model_version    text,
    payload          text,
    event_time       text,
    detected_at      text
);

CREATE OR REPLACE FUNCTION bronze.raw_fraud_alerts_inbox_route() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_detail text;
BEGIN
    BEGIN
        INSERT INTO bronze.raw_fraud_alerts AS a
            (alert_id, transaction_id, customer_id, fraud_score, model_score, rules_fired, model_version,
             payload, event_time, detected_at)
        VALUES (NEW.alert_id, NEW.transaction_id, NEW.customer_id, NEW.fraud_score, NEW.model_score,
                coalesce(NEW.rules_fired::text[], '{}'), NEW.model_version, NEW.payload::jsonb,
                NEW.event_time::timestamptz, coalesce(NEW.detected_at::timestamptz, now()))
        ON CONFLICT (alert_id) DO UPDATE SET
            transaction_id = EXCLUDED.transaction_id, customer_id = EXCLUDED.customer_id,
            fraud_score = EXCLUDED.fraud_score, model_score = EXCLUDED.model_score,
            rules_fired = EXCLUDED.rules_fired, model_version = EXCLUDED.model_version,
            payload = EXCLUDED.payload, event_time = EXCLUDED.event_time, detected_at = EXCLUDED.detected_at;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
        GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
        PERFORM bronze.file_sink_reject('bronze.raw_fraud_alerts', NEW.alert_id, to_jsonb(NEW),
                                        SQLSTATE, SQLERRM, nullif(v_detail, ''));
    END;
    RETURN NULL;  -- the inbox stays empty
END
$$;

CREATE OR REPLACE TRIGGER raw_fraud_alerts_inbox_route
    BEFORE INSERT ON bronze.raw_fraud_alerts_inbox
    FOR EACH ROW EXECUTE FUNCTION bronze.raw_fraud_alerts_inbox_route();
