"""The project's dbt against a given warehouse DSN, through the platform's own runner
(``streamflow.dbt_runner.run_dbt``), with every artefact (target, logs, partial-parse state) under
the test's work directory, and the results in a shape convenient for assertions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamflow import dbt_runner
from streamflow.settings import load_settings


@dataclass
class DbtRun:
    args: list[str]
    returncode: int
    output: str
    results: list[dict[str, Any]]

    def statuses(self) -> dict[str, str]:
        """unique_id -> status (success, pass, warn, fail, error, skipped)."""
        return {r["unique_id"]: r["status"] for r in self.results}

    def failures(self) -> dict[str, Any]:
        return {r["unique_id"]: r.get("message") for r in self.results
                if r["status"] in {"fail", "error", "runtime error", "skipped"}}


def run_dbt(args: list[str], *, dsn: str, work_dir: Path, check: bool = True, timeout: float = 600) -> DbtRun:
    """``dbt <args>`` with target/logs under ``work_dir``; raises on a non-zero exit when ``check``."""
    result = dbt_runner.run_dbt(load_settings(), args, target_path=work_dir / "target", echo=False, check=False,
                                warehouse_dsn=dsn, timeout_s=timeout)
    run = DbtRun(args, int(result["_returncode"]), str(result["_output"]), list(result.get("results", [])))
    if check and run.returncode != 0:
        raise AssertionError(f"`dbt {' '.join(args)}` exited {run.returncode}: {run.failures()}\n{run.output[-6000:]}")
    return run
