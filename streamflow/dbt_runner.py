"""Run dbt (its own venv, as a subprocess) with the warehouse connection from settings.

Used where we need dbt's artifacts ourselves (set-up's manifest, docs publishing, the quality DAG's
results table); per-model runs go through Cosmos instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.dbt")


class DbtError(RuntimeError):
    pass


def warehouse_env_from_dsn(dsn: str) -> dict[str, str]:
    """The profile's variables (dbt/profiles.yml) for a ``postgresql://`` URL (benchmarks, tests)."""
    url = urlsplit(dsn)
    return {
        "STREAMFLOW_WAREHOUSE_HOST": url.hostname or "127.0.0.1",
        "STREAMFLOW_WAREHOUSE_PORT": str(url.port or 5432),
        "STREAMFLOW_WAREHOUSE_USER": unquote(url.username or ""),
        "STREAMFLOW_WAREHOUSE_PASSWORD": unquote(url.password or ""),
        "STREAMFLOW_WAREHOUSE_DB": url.path.lstrip("/") or "warehouse",
    }


def dbt_env(settings: Settings, warehouse_dsn: str | None = None) -> dict[str, str]:
    warehouse = warehouse_env_from_dsn(warehouse_dsn) if warehouse_dsn else settings.warehouse_env()
    env = {**os.environ, **warehouse}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def run_dbt(settings: Settings, args: list[str], *, target_path: Path, echo: bool = True,
            check: bool = True, warehouse_dsn: str | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """Run ``dbt <args>``; return run_results.json (or {} when the command writes none).

    ``warehouse_dsn`` points dbt at another database than the platform's warehouse (a benchmark's or
    a test's throwaway one). The result also carries ``_returncode`` and ``_output`` (the tail of
    dbt's stdout + stderr)."""
    target_path.mkdir(parents=True, exist_ok=True)
    argv = [
        str(settings.dbt_executable), *args,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(target_path),
    ]
    env = dbt_env(settings, warehouse_dsn)
    env["DBT_LOG_PATH"] = str(target_path / "logs")
    results_file = target_path / "run_results.json"
    results_file.unlink(missing_ok=True)  # never report a previous command's results as this one's
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=settings.dbt_project_dir,
                          timeout=timeout_s)
    if echo:
        print(proc.stdout[-20000:], flush=True)
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    if check and proc.returncode != 0:
        raise DbtError(f"`dbt {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n"
                       f"{proc.stderr[-2000:]}")
    results["_returncode"] = proc.returncode
    results["_output"] = (proc.stdout[-20000:] + proc.stderr[-4000:])
    return results


def parse_manifest(settings: Settings) -> Path:
    """`dbt parse` into the shared target dir: the manifest Cosmos renders the DAGs from."""
    manifest = settings.dbt_target_dir / "manifest.json"
    before = _nodes_of(manifest)
    run_dbt(settings, ["parse", "--quiet"], target_path=settings.dbt_target_dir, echo=False)
    if not manifest.exists():
        raise DbtError(f"dbt parse wrote no manifest at {manifest}")
    _seed_partial_parse(settings)
    if _nodes_of(manifest) != before:
        touch_dag_files(settings)
    return manifest


def _nodes_of(manifest: Path) -> Any:
    """What the Cosmos DAGs render from (nodes, sources, their dependencies); None without a manifest.
    Not the whole file: every parse writes a new ``metadata.generated_at`` and invocation id."""
    try:
        data = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return None
    return {key: data.get(key) for key in ("nodes", "sources", "parent_map", "child_map", "exposures")}


def touch_dag_files(settings: Settings) -> list[Path]:
    """Mark the DAG files changed, so a running dag-processor re-parses them now.

    Airflow re-parses an unchanged file only every ``DAG_REPARSE_INTERVAL_S`` (10 min,
    :mod:`streamflow.stack.airflow`), but at once a file whose mtime is newer than its last parse.
    A new dbt model changes the manifest, not a DAG file: without this the DAGs would show the old
    task groups for up to 10 minutes."""
    touched = []
    for dag_file in sorted(settings.dags_dir.glob("*.py")):
        try:
            dag_file.touch()
        except OSError as error:  # a read-only checkout (an image): its processor parses at start anyway
            log.warning("could not mark a DAG file for re-parsing", dag_file=str(dag_file), error=str(error))
            continue
        touched.append(dag_file)
    return touched


def _seed_partial_parse(settings: Settings) -> None:
    """Give Cosmos a partial-parse file for the first dbt task of each group.

    Cosmos copies ``<project>/target/partial_parse.msgpack`` (or its own cache, filled only after a
    task ran) into each task's temporary project; without it the first task of every task group
    re-parses the whole project (~7 s here). ``dbt/target/`` is git-ignored.
    """
    source = settings.dbt_target_dir / "partial_parse.msgpack"
    if not source.exists():
        return
    target = settings.dbt_project_dir / "target"
    try:
        target.mkdir(exist_ok=True)
        shutil.copyfile(source, target / "partial_parse.msgpack")
    except OSError as error:  # a read-only project dir (an image) only loses the speed-up
        log.warning("could not seed dbt partial parse", target=str(target), error=str(error))
