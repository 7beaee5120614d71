"""bootstrap_pipeline's task callables (streamflow.pipeline): preflight, the XCom hand-offs, the
wait_for_bronze sensor and docs publishing.

Their boundaries are faked: PostgreSQL (``psycopg.connect``), the run accounting (its own tests are in
test_run_accounting.py), Flink's health, dbt (``run_dbt``). The DAG runs them for real in
tests/e2e/test_bootstrap_pipeline.py.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamflow import pipeline
from streamflow.run_accounting import RunAccount, RunRange
from streamflow.settings import Settings, load_settings


class TaskInstance:
    def __init__(self, xcom: dict[str, Any], started_s_ago: float = 0.0) -> None:
        self.xcom = xcom
        self.start_date = datetime.now(UTC) - timedelta(seconds=started_s_ago)

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    s = load_settings(state_dir=tmp_path, install_dir=tmp_path,
                      kafka_bootstrap_servers=f"127.0.0.1:{_closed_port()}", bronze_wait_timeout_s=60)
    monkeypatch.setattr(pipeline, "get_settings", lambda: s)
    return s


def test_preflight_names_everything_missing_at_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(pipeline.psycopg, "connect", refused)
    with pytest.raises(pipeline.PreflightError) as failed:
        pipeline.preflight()
    text = str(failed.value)
    assert f"PostgreSQL at 127.0.0.1:{settings.postgres_port} (STREAMFLOW_POSTGRES_*): connection refused" in text
    assert f"Kafka at {settings.kafka_bootstrap} (STREAMFLOW_KAFKA_*): connection refused" in text
    assert f"local runtime is missing {settings.venv_python('flink')}" in text  # an empty install dir


def test_offsets_after_needs_the_before_note(settings: Settings) -> None:
    with pytest.raises(pipeline.BronzeWaitError, match="no XCom from transactions_offsets_before"):
        pipeline.transactions_offsets_after(TaskInstance({}))


RUN = RunRange(topic="transactions.raw", start={0: 0}, end={0: 10}, records=10, started_at=1.0,
               dlq_topic="dlq.errors", dlq_start={0: 0})


def _account(monkeypatch: pytest.MonkeyPatch, bronze: int, dlq: int) -> None:
    monkeypatch.setattr(pipeline, "account_run", lambda s, run: RunAccount(
        expected=run.records, bronze={0: bronze}, dlq={0: dlq}, per_partition_expected={0: 10}))


def test_bronze_ready_without_a_range_fails(settings: Settings) -> None:
    with pytest.raises(pipeline.BronzeWaitError, match="this run's range of events is unknown"):
        pipeline.bronze_ready(TaskInstance({}))


@pytest.mark.parametrize(("bronze", "dlq", "ready"), [(10, 0, True), (7, 3, True), (7, 2, False), (0, 0, False)])
def test_bronze_ready_once_every_record_is_in_bronze_or_the_dlq(bronze: int, dlq: int, ready: bool,
                                                               settings: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _account(monkeypatch, bronze, dlq)
    assert pipeline.bronze_ready(TaskInstance({"transactions_offsets_after": RUN.to_xcom()})) is ready


def test_bronze_wait_times_out_naming_what_is_missing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _account(monkeypatch, bronze=6, dlq=1)
    health = type("Health", (), {"reason": "restarting (3 restarts in 5 min)"})()
    monkeypatch.setattr("streamflow.runtime.health.job_health", lambda job, s: health)
    late = TaskInstance({"transactions_offsets_after": RUN.to_xcom()}, started_s_ago=61)
    with pytest.raises(pipeline.BronzeWaitError) as timed_out:
        pipeline.bronze_ready(late)
    text = str(timed_out.value)
    assert "3 of this run's 10 events" in text
    assert "partition 0: 3 of 10 missing (6 in bronze, 1 in the DLQ)" in text
    assert "transaction_processor: restarting (3 restarts in 5 min)" in text


def test_publish_docs_replaces_each_file_whole(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def docs_generate(s: Settings, args: list[str], *, target_path: Path, **_: Any) -> dict[str, Any]:
        assert args == ["docs", "generate"]
        target_path.mkdir(parents=True, exist_ok=True)
        (target_path / "index.html").write_text("<html>new</html>")
        (target_path / "manifest.json").write_text("{}")
        return {}  # no catalog.json: dbt could not reach the warehouse for it

    monkeypatch.setattr(pipeline, "run_dbt", docs_generate)
    settings.dbt_docs_dir.mkdir(parents=True)
    (settings.dbt_docs_dir / "index.html").write_text("<html>old</html>")
    published = pipeline.publish_docs()
    assert set(published) == {"index.html", "manifest.json"}
    assert (settings.dbt_docs_dir / "index.html").read_text() == "<html>new</html>"
    assert sorted(p.name for p in settings.dbt_docs_dir.iterdir()) == ["index.html", "manifest.json"]
