"""`streamflow bootstrap --if-needed` (warm `make up`, ADR 0014): resume only a pipeline this stack
bootstrapped - its latest bootstrap_pipeline run succeeded AND gold holds rows. Every other state must
bootstrap, so a half-done first run, a failed run or an emptied warehouse is never reported as up."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamflow.airflow_client import AirflowApiError, AirflowClient
from streamflow.ops import resume
from streamflow.settings import load_settings

RUN_STATES = ["success", "failed", "running", "queued", "upstream_failed", None]


class FakeClient(AirflowClient):
    """The real client over a faked HTTP boundary: Airflow's dagRuns listing as the API returns it."""

    def __init__(self, runs: list[dict[str, Any]] | None) -> None:
        self.runs = runs
        self.paths: list[str] = []

    def get(self, path: str) -> Any:
        self.paths.append(path)
        if self.runs is None:
            raise AirflowApiError(f"GET {path} -> HTTP 404: DAG not found")
        return {"dag_runs": self.runs, "total_entries": len(self.runs)}


@given(state=st.sampled_from(RUN_STATES), rows=st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)))
def test_resumes_only_after_a_successful_run_with_gold_rows(state: str | None, rows: int | None) -> None:
    client = FakeClient([{"dag_run_id": "manual__1", "state": state}])
    original = resume.gold_rows
    resume.gold_rows = lambda settings: rows  # type: ignore[assignment]
    try:
        verdict = resume.previous_bootstrap(load_settings(), client)
    finally:
        resume.gold_rows = original  # type: ignore[assignment]
    assert verdict.done == (state == "success" and bool(rows))
    assert "order_by=-start_date" in client.paths[0] and "limit=1" in client.paths[0]
    if not verdict.done:
        assert verdict.reason  # says why it bootstraps instead


@pytest.mark.parametrize("runs", [None, []], ids=["dag-unknown", "never-ran"])
def test_a_stack_without_runs_bootstraps(runs: list[dict[str, Any]] | None) -> None:
    verdict = resume.previous_bootstrap(load_settings(), FakeClient(runs))
    assert not verdict.done and "never ran" in verdict.reason


def test_other_api_errors_are_not_read_as_never_ran() -> None:
    class Broken(FakeClient):
        def get(self, path: str) -> Any:
            raise AirflowApiError(f"GET {path} -> HTTP 500: boom")

    with pytest.raises(AirflowApiError, match="500"):
        resume.previous_bootstrap(load_settings(), Broken(None))


def test_on_kubernetes_resume_only_waits(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Never submit a job the operator owns: on Kubernetes resume() only watches health."""
    from streamflow.runtime import flink_local
    settings = load_settings(state_dir=tmp_path, runtime="kubernetes", kafka_bootstrap_servers="kafka.invalid:9092",
                             postgres_password="x")

    def no_deploy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("deploy_all called on Kubernetes")

    watched: list[list[str]] = []
    monkeypatch.setattr(flink_local, "deploy_all", no_deploy)
    monkeypatch.setattr(resume, "wait_healthy", lambda s, jobs, timeout_s: watched.append(jobs) or {})
    assert resume.resume(settings) == {}
    assert watched and set(watched[0]) == {"transaction_processor", "fraud_detector", "realtime_aggregator"}
