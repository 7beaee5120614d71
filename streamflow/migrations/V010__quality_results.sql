-- Results of the dbt_quality DAG (kept over time for the lineage portal's quality chart) and the
-- alerts its failure callback records.
CREATE SCHEMA IF NOT EXISTS quality;

CREATE TABLE IF NOT EXISTS quality.dbt_test_results (
    dag_run_id      text        NOT NULL,
    test_group      text        NOT NULL,          -- freshness | staging | intermediate | marts
    unique_id       text        NOT NULL,          -- dbt node id (test.* or source.*)
    test_name       text        NOT NULL,
    status          text        NOT NULL,          -- pass | warn | fail | error | skipped
    failures        integer,
    message         text,
    execution_time  double precision,
    run_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_run_id, unique_id)
);
CREATE INDEX IF NOT EXISTS dbt_test_results_run_at_idx ON quality.dbt_test_results (run_at);

CREATE TABLE IF NOT EXISTS quality.alerts (
    alert_id    bigserial   PRIMARY KEY,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    dag_id      text        NOT NULL,
    dag_run_id  text        NOT NULL,
    task_id     text        NOT NULL,
    message     text        NOT NULL,
    UNIQUE (dag_id, dag_run_id, task_id)
);
