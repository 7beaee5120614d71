"""The `streamflow` CLI's operator commands: argument handling and the pure parts behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamflow import cli
from streamflow.catalog import flink_job_keys
from streamflow.ops import flink, psql, stack
from streamflow.ops.kafka import Message, format_message
from streamflow.ops.render import ago, table
from streamflow.settings import load_settings


def test_psql_passes_its_own_options_through() -> None:
    args = cli.parse(["psql", "--db", "airflow", "-A", "-t", "-c", "select 1"])
    assert args.db == "airflow" and args.psql_args == ["-A", "-t", "-c", "select 1"]
    args = cli.parse(["psql", "-c", "select count(*) from bronze.raw_transactions"])
    assert args.db is None and args.psql_args == ["-c", "select count(*) from bronze.raw_transactions"]


def test_psql_command_connects_to_the_warehouse_with_the_generated_password(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, postgres_port=55999)
    argv, env = psql.command(settings, None, ["-c", "select 1"])
    assert Path(argv[0]).name == "psql"
    assert argv[argv.index("-p") + 1] == "55999" and argv[argv.index("-d") + 1] == settings.warehouse_db
    assert argv[-2:] == ["-c", "select 1"]
    assert env["PGPASSWORD"] == settings.resolved_postgres_password
    assert settings.resolved_postgres_password not in " ".join(argv)  # never on the command line (ps shows it)


@pytest.mark.parametrize("argv", [["kafka", "topics"], ["kafka", "lag"], ["kafka", "tail", "dlq.errors", "-n", "5"],
                                  ["flink", "jobs"], ["flink", "restart", "fraud_detector"],
                                  ["flink", "cancel", "fraud-detector"], ["doctor"], ["status"]])
def test_operator_commands_parse(argv: list[str]) -> None:
    assert callable(cli.parse(argv).func)


def test_flink_job_names_accept_both_spellings_and_reject_unknown_ones() -> None:
    assert flink.job("fraud_detector").name == flink.job("fraud-detector").name == "fraud-detector"
    assert [s.job_key for s in flink.pipeline_jobs()] == list(flink_job_keys())  # the catalog's order
    with pytest.raises(Exception, match="no Flink job 'nope'"):
        flink.job("nope")


def test_kubernetes_actions_print_the_kubectl_command(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, runtime="kubernetes", kafka_bootstrap_servers="k:9092",
                             postgres_password="x")
    with pytest.raises(flink.FlinkOpError, match=r"kubectl -n \S+ patch flinkdeployment fraud-detector.*restartNonce"):
        flink.restart(settings, "fraud_detector")
    with pytest.raises(flink.FlinkOpError, match="suspended"):
        flink.cancel(settings, "fraud_detector")


def test_logs_of_flink_jobs_resolve_to_their_cluster_files(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    cluster = settings.logs_dir / "flink" / "cluster-pipeline"  # the jobs share one cluster (ADR 0013)
    assert stack.log_path(settings, "flink-fraud_detector") == cluster / "taskmanager.log"
    assert stack.log_path(settings, "flink-fraud-detector-jobmanager") == cluster / "jobmanager.log"
    job = settings.logs_dir / "flink" / "fraud_detector"  # the submit log stays the job's own
    assert stack.log_path(settings, "flink-fraud_detector-submit") == job / "submit.log"
    assert stack.log_path(settings, "kafka") == settings.logs_dir / "kafka.log"


def test_render_helpers() -> None:
    text = table(("job", "lag"), [("fraud_detector", 12), ("x", None)])
    assert text.splitlines()[0].split() == ["job", "lag"]
    assert text.splitlines()[2].split() == ["x", "-"]
    assert ago(None) == "-" and ago(5) == "5 s ago" and ago(600) == "10 min ago" and ago(9000) == "2.5 h ago"


def test_messages_are_shown_compact_and_cut() -> None:
    message = Message(2, 41, 1_800_000_000_000, "k1", '{ "reason": "bad_json",  "detail": "' + "x" * 500 + '" }')
    line = format_message(message, width=80)
    assert line.startswith("p2@41 ") and ' key=k1 {"reason":"bad_json"' in line and line.endswith("...")
    assert format_message(Message(0, 1, -1, None, "not json")) == "p0@1 - not json"
