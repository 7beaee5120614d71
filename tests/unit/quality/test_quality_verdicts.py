"""dbt_quality is green only when dbt checked something in this run and nothing failed.

dbt is faked here at its boundary (``run_dbt``: what it returns and which files it leaves behind);
tests/integration/quality runs the real dbt against a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from streamflow import quality
from streamflow.settings import Settings, load_settings

STATUSES = ["pass", "warn", "fail", "error", "runtime error", "success", "skipped"]


def write_results(path: Path, statuses: list[str], *, age_s: float = 0.0) -> Path:
    """A dbt artifact (run_results.json / sources.json) generated ``age_s`` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = datetime.fromtimestamp(time.time() - age_s, UTC).isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps({
        "metadata": {"generated_at": generated},
        "results": [{"unique_id": f"test.streamflow.check_{i}.abc", "status": s, "failures": 0, "message": None}
                    for i, s in enumerate(statuses)],
    }))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    s = load_settings(state_dir=tmp_path, install_dir=tmp_path, dbt_artifacts_dir=str(tmp_path / "dbt"))
    monkeypatch.setattr(quality, "get_settings", lambda: s)
    return s


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Rows the task would insert into quality.dbt_test_results (the warehouse is not under test here)."""
    rows: list[dict[str, Any]] = []
    monkeypatch.setattr(quality, "_insert", lambda s, new: rows.extend(new))
    return rows


def fake_dbt(monkeypatch: pytest.MonkeyPatch, *, returncode: int, output: str = "",
             writes: tuple[str, list[str], float] | None = None) -> None:
    """Replace dbt: exit with ``returncode`` and optionally leave (file name, statuses, age) in the target."""

    def run(settings: Settings, args: list[str], *, target_path: Path, **_: Any) -> dict[str, Any]:
        if writes is not None:
            name, statuses, age_s = writes
            write_results(target_path / name, statuses, age_s=age_s)
        return {"_returncode": returncode, "_output": output}

    monkeypatch.setattr(quality, "run_dbt", run)


BAD_PASSWORD = ('Encountered an error:\nDatabase Error\n  connection to server at "127.0.0.1", port 55533 failed: '
                'FATAL:  password authentication failed for user "streamflow"\n')


@pytest.mark.parametrize("task", ["freshness", "staging"])
def test_dbt_failing_to_connect_fails_the_task(task, settings, recorded, monkeypatch):
    """dbt exits 2 and writes no results (measured with a wrong password): the old code recorded zero
    checks and went green."""
    fake_dbt(monkeypatch, returncode=2, output=BAD_PASSWORD)
    with pytest.raises(quality.DbtDidNotCheck, match="password authentication failed"):
        if task == "freshness":
            quality.source_freshness(run_id="r1")
        else:
            quality.run_tests(task, run_id="r1")
    assert [r["status"] for r in recorded] == ["error"]  # the page charts the run as an error
    assert recorded[0]["unique_id"] == f"dbt.{task}"


def test_a_previous_runs_sources_json_is_not_this_runs_result(settings, recorded, monkeypatch):
    target = settings.dbt_artifacts / "quality" / "freshness"
    write_results(target / "sources.json", ["pass", "pass"], age_s=3600)
    fake_dbt(monkeypatch, returncode=0)  # dbt "succeeded" but wrote nothing
    with pytest.raises(quality.DbtDidNotCheck, match=r"wrote no sources\.json"):
        quality.source_freshness(run_id="r1")


def test_stale_run_results_fail_the_task(settings, recorded, monkeypatch):
    fake_dbt(monkeypatch, returncode=0, writes=("run_results.json", ["pass", "pass"], 3600))
    with pytest.raises(quality.DbtDidNotCheck, match="older than this task"):
        quality.run_tests("marts", run_id="r1")


def test_stale_generated_at_fails_even_with_a_fresh_mtime(tmp_path):
    path = write_results(tmp_path / "run_results.json", ["pass"], age_s=3600)
    os.utime(path)  # touched now (copied, restored from a backup...), generated an hour ago
    with pytest.raises(quality.DbtDidNotCheck, match="generated at"):
        quality.this_runs_results(path, time.time() - 5, returncode=0, output="", what="test")


def test_a_group_that_checks_nothing_is_not_green(settings, recorded, monkeypatch):
    fake_dbt(monkeypatch, returncode=0, writes=("run_results.json", [], 0))
    with pytest.raises(quality.DbtDidNotCheck, match="checked nothing"):
        quality.run_tests("intermediate", run_id="r1")


def test_stale_bronze_source_is_an_error_that_fails_freshness(settings, recorded, monkeypatch):
    fake_dbt(monkeypatch, returncode=1, writes=("sources.json", ["pass", "error", "warn"], 0))
    with pytest.raises(quality.QualityFailure, match="1 dbt check"):
        quality.source_freshness(run_id="r1")
    assert sorted(r["status"] for r in recorded) == ["error", "pass", "warn"]


def test_fresh_passing_results_are_green(settings, recorded, monkeypatch):
    fake_dbt(monkeypatch, returncode=0, writes=("run_results.json", ["pass", "warn"], 0))
    assert quality.run_tests("staging", run_id="r1") == {"group": "staging", "total": 2, "failed": 0, "warned": 1}


@hsettings(max_examples=200, deadline=None)
@given(returncode=st.integers(-2, 3), exists=st.booleans(), age_s=st.sampled_from([0.0, 0.5, 5.0, 3600.0]),
       statuses=st.lists(st.sampled_from(STATUSES), max_size=5))
def test_results_count_only_when_they_are_this_runs(tmp_path_factory, returncode, exists, age_s, statuses):
    """Property: the results are accepted only if dbt exited 0/1, the file exists, is not older than
    the task, holds at least one result, and an exit 1 is explained by a failing result."""
    path = tmp_path_factory.mktemp("dbt") / "run_results.json"
    if exists:
        write_results(path, statuses, age_s=age_s)
    started = time.time() - 2.0  # the task began 2 s ago
    fresh = age_s <= 2.0 + quality.MTIME_SLACK_S
    explained = returncode == 0 or any(s in quality.BAD_STATUSES for s in statuses)
    valid = returncode in (0, 1) and exists and fresh and bool(statuses) and explained
    try:
        results = quality.this_runs_results(path, started, returncode=returncode, output="", what="test")
    except quality.DbtDidNotCheck:
        assert not valid
    else:
        assert valid
        assert [r["status"] for r in results["results"]] == statuses


class FakeTI:
    def __init__(self, successes: int | Exception) -> None:
        self.successes = successes
        self.asked: list[dict[str, Any]] = []

    def get_dr_count(self, **kwargs: Any) -> int:
        self.asked.append(kwargs)
        if isinstance(self.successes, Exception):
            raise self.successes
        return self.successes


class FakeConnection:
    def __init__(self, gold: bool) -> None:
        self.gold = gold

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str) -> FakeConnection:
        return self

    def fetchone(self) -> tuple[bool]:
        return (self.gold,)


@pytest.mark.parametrize(("gold", "successes", "expected"), [
    (False, 0, False),  # never bootstrapped: skip
    (False, None, False),  # outside a task (no ti): the warehouse is the only evidence
    (False, 1, True),  # bootstrapped once, gold dropped since: check (and fail) instead of skipping
    (True, 0, True),
    (False, RuntimeError("supervisor gone"), False),
])
def test_checks_are_skipped_only_when_never_bootstrapped(gold, successes, expected, settings, monkeypatch, capsys):
    monkeypatch.setattr(quality.psycopg, "connect", lambda *a, **k: FakeConnection(gold))
    context: dict[str, Any] = {} if successes is None else {"ti": FakeTI(successes)}
    assert quality.pipeline_bootstrapped(**context) is expected
    if not expected:
        assert "never bootstrapped" in capsys.readouterr().out
    if successes is not None and not isinstance(successes, Exception):
        assert context["ti"].asked == [{"dag_id": "bootstrap_pipeline", "states": ["success"]}]
