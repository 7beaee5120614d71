"""Run the project's dbt (its own venv) as a subprocess against a given warehouse DSN, keeping every
artefact (target, logs, partial-parse state) out of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[3]
PROJECT_DIR = REPO_ROOT / "dbt"


def dbt_executable() -> Path:
    configured = os.environ.get("STREAMFLOW_DBT_EXECUTABLE_PATH")
    return Path(configured) if configured else REPO_ROOT / ".streamflow" / "venvs" / "dbt" / "bin" / "dbt"


def warehouse_env(dsn: str) -> dict[str, str]:
    """The profile's variables (dbt/profiles.yml) for a postgresql:// URL."""
    url = urlsplit(dsn)
    return {
        "STREAMFLOW_WAREHOUSE_HOST": url.hostname or "127.0.0.1",
        "STREAMFLOW_WAREHOUSE_PORT": str(url.port or 5432),
        "STREAMFLOW_WAREHOUSE_USER": unquote(url.username or ""),
        "STREAMFLOW_WAREHOUSE_PASSWORD": unquote(url.password or ""),
        "STREAMFLOW_WAREHOUSE_DB": url.path.lstrip("/") or "warehouse",
    }


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
    target = work_dir / "target"
    profiles_dir = work_dir / "profiles"  # a copy: dbt writes .user.yml next to profiles.yml
    profiles_dir.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "profiles.yml", profiles_dir / "profiles.yml")
    argv = [str(dbt_executable()), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(profiles_dir),
            "--target-path", str(target), "--log-path", str(work_dir / "logs")]
    env = {**os.environ, **warehouse_env(dsn), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    (target / "run_results.json").unlink(missing_ok=True)
    proc = subprocess.run(argv, env=env, cwd=work_dir, capture_output=True, text=True, timeout=timeout, check=False)
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    run = DbtRun(args, proc.returncode, proc.stdout + proc.stderr, results)
    if check and proc.returncode != 0:
        raise AssertionError(f"`dbt {' '.join(args)}` exited {proc.returncode}: {run.failures()}\n{run.output[-6000:]}")
    return run
