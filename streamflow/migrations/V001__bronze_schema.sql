-- Bronze layer: written by the Flink jobs, read by dbt. Owned by the platform (not by the jobs),
-- applied idempotently by `streamflow.warehouse.apply_migrations` (bootstrap_pipeline's provision step).
-- Every table is keyed on a natural key so a redelivered event or a restarted job upserts, never duplicates.
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;

CREATE TABLE IF NOT EXISTS bronze.raw_transactions (
    transaction_id   text        PRIMARY KEY,
    payload          jsonb       NOT NULL,          -- the event as produced (schema_version inside)
    kafka_topic      text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    event_time       timestamptz,                   -- parsed from payload.event_time
    ingested_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS raw_transactions_ingested_at_idx ON bronze.raw_transactions (ingested_at);

CREATE TABLE IF NOT EXISTS bronze.raw_fraud_alerts (
    alert_id         text        PRIMARY KEY,       -- deterministic: '<transaction_id>' (one alert per transaction)
    transaction_id   text        NOT NULL,
    customer_id      text        NOT NULL,
    fraud_score      double precision NOT NULL,     -- combined score in [0, 1]
    model_score      double precision,              -- IsolationForest part, in [0, 1]
    rules_fired      text[]      NOT NULL DEFAULT '{}',
    model_version    text,
    payload          jsonb       NOT NULL,          -- the alert as produced to fraud.alerts
    event_time       timestamptz,
    detected_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS raw_fraud_alerts_detected_at_idx ON bronze.raw_fraud_alerts (detected_at);

CREATE TABLE IF NOT EXISTS bronze.realtime_metrics (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    store_id         text        NOT NULL,          -- '__all__' for the overall window
    txn_count        bigint      NOT NULL,
    amount_sum       numeric(18, 2) NOT NULL,
    alert_count      bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, store_id)
);

-- Applied-migration bookkeeping (the runner creates it too; kept here for readers).
CREATE TABLE IF NOT EXISTS public.streamflow_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
