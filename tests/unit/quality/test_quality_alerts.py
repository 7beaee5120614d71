"""dbt_quality's records: every dbt result as a row of quality.dbt_test_results, every failed task as an
alert row and a webhook post.

The warehouse is faked at ``psycopg.connect`` and the webhook at ``urllib.request.urlopen``;
tests/integration/quality writes to a real PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streamflow import quality
from streamflow.settings import Settings, load_settings


class _Connection:
    def __init__(self, executed: list[tuple[str, Any]]) -> None:
        self.executed = executed

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, query: str, params: Any) -> None:
        self.executed.append((query, params))


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: Any) -> Settings:
    s = load_settings(state_dir=tmp_path, install_dir=tmp_path, **values)
    monkeypatch.setattr(quality, "get_settings", lambda: s)
    return s


def _context(exception: Exception) -> dict[str, Any]:
    ti = type("TI", (), {"dag_id": "dbt_quality", "task_id": "test_marts"})()
    return {"task_instance": ti, "run_id": "scheduled__1", "exception": exception}


def test_a_failed_task_leaves_an_alert_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settings(tmp_path, monkeypatch)
    executed: list[tuple[str, Any]] = []
    monkeypatch.setattr(quality.psycopg, "connect", lambda *a, **k: _Connection(executed))
    monkeypatch.setattr(quality.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no webhook is configured"))
    quality.record_failure_alert(_context(RuntimeError("x" * 5000)))
    [(query, params)] = executed
    assert query.startswith("INSERT INTO quality.alerts")
    dag_id, run_id, task_id, message = params
    assert (dag_id, run_id, task_id) == ("dbt_quality", "scheduled__1", "test_marts")
    assert message.startswith("dbt_quality.test_marts failed in run scheduled__1: xxx") and len(message) == 4000


def test_the_webhook_is_told_even_when_the_warehouse_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settings(tmp_path, monkeypatch, alert_webhook_url="http://hooks.test/quality/")

    def down(*args: Any, **kwargs: Any) -> None:
        raise psycopg.OperationalError("connection refused")

    posted: list[Any] = []
    monkeypatch.setattr(quality.psycopg, "connect", down)
    monkeypatch.setattr(quality.urllib.request, "urlopen", lambda request, timeout: posted.append((request, timeout)))
    quality.record_failure_alert(_context(quality.QualityFailure("2 dbt check(s) failed in marts")))
    [(request, timeout)] = posted
    assert (request.full_url, request.get_method(), timeout) == ("http://hooks.test/quality", "POST", 10)
    assert request.get_header("Content-type") == "application/json"
    assert json.loads(request.data) == {
        "text": "dbt_quality.test_marts failed in run scheduled__1: 2 dbt check(s) failed in marts"}


def test_an_unreachable_webhook_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settings(tmp_path, monkeypatch, alert_webhook_url="http://hooks.test")
    monkeypatch.setattr(quality.psycopg, "connect", lambda *a, **k: _Connection([]))

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise OSError("no route to host")

    monkeypatch.setattr(quality.urllib.request, "urlopen", unreachable)
    quality.record_failure_alert(_context(RuntimeError("boom")))  # the callback must never fail the task again


def test_each_dbt_result_becomes_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, monkeypatch)
    inserted: list[dict[str, Any]] = []
    monkeypatch.setattr(quality, "_insert", lambda s, rows: inserted.extend(rows))
    results = {"results": [
        {"unique_id": "test.streamflow.not_null_fct_transactions_id.5f1a", "status": "fail", "failures": 3,
         "message": "m" * 3000, "execution_time": 0.2},
        {"unique_id": "source.streamflow.bronze.raw_transactions", "status": "pass", "message": None},
    ]}
    rows = quality._record(settings, "run-7", "marts", results)
    assert rows == inserted
    assert [(r["test_name"], r["status"], r["failures"], len(r["message"])) for r in rows] == [
        ("not_null_fct_transactions_id", "fail", 3, 2000),
        ("source.streamflow.bronze.raw_transactions", "pass", None, 0)]
    assert {(r["dag_run_id"], r["test_group"]) for r in rows} == {("run-7", "marts")}


def test_one_test_group_per_model_folder() -> None:
    assert quality.TEST_GROUPS == {"staging": "path:models/staging", "intermediate": "path:models/intermediate",
                                   "marts": "path:models/marts"}
