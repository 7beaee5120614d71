"""A small client for Airflow's REST API (``/api/v2``), used by the CLI, `make up` and the tests.

Authentication is Airflow's own: ``POST /auth/token`` with the simple auth manager's admin user
returns a JWT sent as a Bearer token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamflow.settings import Settings
from streamflow.stack.airflow import admin_password

TERMINAL = {"success", "failed"}


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    _token: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AirflowClient:
        password = admin_password(settings)
        if password is None:
            raise AirflowApiError(
                "Airflow admin password not found: start Airflow first (`streamflow up`)"
            )
        return cls(settings.airflow_url, settings.airflow_admin_user, password)

    def token(self) -> str:
        if self._token is None:
            body = self._raw("POST", "/auth/token", {"username": self.username, "password": self.password},
                             auth=False)
            self._token = str(body["access_token"])
        return self._token

    def _raw(self, method: str, path: str, payload: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                text = response.read()
                return json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise AirflowApiError(f"{method} {path} -> HTTP {error.code}: {detail}") from None

    def get(self, path: str) -> Any:
        return self._raw("GET", path)

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        return self._raw("POST", path, payload)

    def patch(self, path: str, payload: dict[str, Any]) -> Any:
        return self._raw("PATCH", path, payload)

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (fresh stacks need a few seconds)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except AirflowApiError as error:
                if "404" not in str(error) or time.monotonic() > deadline:
                    raise AirflowApiError(
                        f"DAG {dag_id} not available after {timeout_s:.0f} s: check "
                        "`streamflow logs airflow-dag-processor` for import errors"
                    ) from None
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.post(
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"logical_date": datetime.now(UTC).isoformat(), "conf": conf or {}},
        )
        return str(run["dag_run_id"])

    def latest_run(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's newest run by start date, or None when it never ran (or the DAG is unknown: 404)."""
        try:
            body = self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=-start_date&limit=1")
        except AirflowApiError as error:
            if "HTTP 404" in str(error):
                return None
            raise
        runs = list(body.get("dag_runs", []))
        return dict(runs[0]) if runs else None

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=500")
        return list(body["task_instances"])


def follow_run(client: AirflowClient, dag_id: str, run_id: str, *, timeout_s: float = 1800,
               poll_s: float = 3.0, echo: bool = True) -> str:
    """Poll a DAG run to its end and return the final state.

    With ``echo``, progress goes to stdout through :func:`streamflow.ops.bootstrap_view.make_view`: a
    live table of tasks with their durations in a terminal, one line per task state change otherwise.
    """
    from streamflow.ops.bootstrap_view import make_view

    deadline = time.monotonic() + timeout_s
    began = time.monotonic()
    state = "queued"
    failed: list[str] = []
    view = make_view(f"{dag_id} {run_id}") if echo else None
    if view is not None:
        view.__enter__()
    try:
        while time.monotonic() < deadline:
            state = client.run_state(dag_id, run_id)
            tis = client.task_instances(dag_id, run_id)
            failed = [str(ti["task_id"]) for ti in tis if ti.get("state") == "failed"]
            if view is not None:
                view.update(state, tis, time.monotonic() - began)
            if state in TERMINAL:
                break
            time.sleep(poll_s)
    finally:
        if view is not None:
            view.__exit__(None, None, None)
    if echo:
        print(f"{dag_id} run {run_id}: {state} after {time.monotonic() - began:.0f} s", flush=True)
        if state == "failed":
            print(f"  failed tasks: {', '.join(failed) or 'none recorded'}; see their logs in the Airflow UI "
                  f"({client.base_url}/dags/{dag_id}/runs) or run `bin/streamflow doctor`", flush=True)
        elif state not in TERMINAL:
            print(f"  still {state} after the {timeout_s:.0f} s timeout: follow it in the Airflow UI "
                  f"({client.base_url}/dags/{dag_id}/runs)", flush=True)
    return state
