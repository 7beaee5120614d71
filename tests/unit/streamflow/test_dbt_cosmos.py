"""streamflow.dbt_cosmos: the execution mode is decided once, and dbt_layers renders each group once.

Cosmos renders real task groups from a small dbt manifest (tests/unit/portal/manifest_fixture.json:
staging, intermediate and marts models); nothing runs dbt. tests/unit/dags checks the DAGs built
from the project's own manifest.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk import DAG
from cosmos.constants import ExecutionMode, TestBehavior

from streamflow import dbt_cosmos
from streamflow.settings import Settings, load_settings

FIXTURE_MANIFEST = Path(__file__).resolve().parents[1] / "portal" / "manifest_fixture.json"


def _settings(root: Path, mode: str) -> Settings:
    target = root / "dbt-artifacts" / "target"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE_MANIFEST, target / "manifest.json")
    return load_settings(state_dir=root, install_dir=root, dbt_artifacts_dir=str(root / "dbt-artifacts"),
                         dbt_execution_mode=mode)


@cache
def rendered(mode: str, root: Path) -> tuple[tuple[Any, ...], DAG]:
    """dbt_layers in a DAG of its own, once per mode (Cosmos rendering costs seconds on a busy host)."""
    with DAG(dag_id=f"layers_{mode}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        groups = dbt_cosmos.dbt_layers(_settings(root / mode, mode))
    return groups, dag


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt-cosmos")


def test_the_mode_is_decided_once_with_every_piece(tmp_path: Path) -> None:
    watcher = dbt_cosmos.mode_plan(_settings(tmp_path, "watcher"))
    assert (watcher.execution_mode, watcher.test_behavior) == (ExecutionMode.WATCHER, TestBehavior.AFTER_EACH)
    assert watcher.setup_operator_args == {"indirect_selection": "buildable"}
    assert watcher.operator_args == dbt_cosmos.WATCHER_SENSOR_ARGS
    assert watcher.groups == (("dbt_models", dbt_cosmos.SILVER + dbt_cosmos.GOLD),)
    local = dbt_cosmos.mode_plan(_settings(tmp_path, "local"))
    assert (local.execution_mode, local.test_behavior) == (ExecutionMode.LOCAL, TestBehavior.BUILD)
    assert (local.setup_operator_args, local.operator_args) == (None, {})
    assert local.groups == (("dbt_staging", dbt_cosmos.SILVER), ("dbt_marts", dbt_cosmos.GOLD))


def test_watcher_mode_returns_its_one_group_once(root: Path) -> None:
    """The DAG wires the first group after wait_for_bronze and publish_docs after the last: a group
    returned twice (the old ``return group, group``) reads as two layers that are one."""
    groups, dag = rendered("watcher", root)
    assert [g.group_id for g in groups] == ["dbt_models"]
    assert len({id(g) for g in groups}) == len(groups)
    watchers = [t for t in dag.tasks if type(t).__name__ == "DbtRunWatcherOperator"]
    assert len(watchers) == 9  # every model of the fixture, silver and gold, in the one group
    assert all(t.poke_interval == 2 and t.deferrable is False for t in watchers)


def test_local_mode_builds_silver_then_gold(root: Path) -> None:
    groups, dag = rendered("local", root)
    assert [g.group_id for g in groups] == ["dbt_staging", "dbt_marts"]
    staging = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt_staging.")}
    marts = [t for t in dag.tasks if t.task_id.startswith("dbt_marts.")]
    assert len(staging) == 3 and len(marts) == 6
    assert {type(t).__name__ for t in dag.tasks} == {"DbtBuildLocalOperator"}
    # every gold task starts after silver: its upstream is in dbt_marts or is a dbt_staging task
    first_gold = [t for t in marts if not any(u.startswith("dbt_marts.") for u in t.upstream_task_ids)]
    assert first_gold and all(t.upstream_task_ids and t.upstream_task_ids <= staging for t in first_gold)


def test_explicit_operator_args_win_over_the_modes(root: Path) -> None:
    settings = _settings(root / "explicit", "watcher")
    with DAG(dag_id="explicit", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        dbt_cosmos.dbt_group("g", dbt_cosmos.SILVER, settings, poke_interval=7)
    sensors = [t for t in dag.tasks if type(t).__name__ == "DbtRunWatcherOperator"]
    assert sensors and {t.poke_interval for t in sensors} == {7}


def test_cosmos_profile_comes_from_the_airflow_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: the warehouse is the Airflow connection streamflow_postgres, generated from the settings;
    Cosmos maps it to dbt's profile (password as an env var, never in the file) and keeps the rest of
    dbt/profiles.yml's target (schema, threads, timeouts)."""
    settings = load_settings(state_dir=tmp_path, postgres_password="pw-from-settings", postgres_port=61234)
    for name, value in settings.airflow_connections_env().items():
        monkeypatch.setenv(name, value)
    mapping = dbt_cosmos.profile_config(settings).profile_mapping
    assert mapping is not None and mapping.conn_id == "streamflow_postgres"
    profile = mapping.profile
    assert (profile["host"], profile["port"], profile["user"], profile["dbname"]) == (
        settings.postgres_host, 61234, settings.postgres_user, settings.warehouse_db)
    assert "pw-from-settings" not in str(profile)  # pragma: allowlist secret
    assert mapping.env_vars[next(iter(mapping.env_vars))] == "pw-from-settings"  # pragma: allowlist secret
    written = yaml.safe_load((settings.dbt_project_dir / "profiles.yml").read_text())["streamflow"]["outputs"]["local"]
    for key in ("schema", "threads", "connect_timeout", "retries"):
        assert profile[key] == written[key], key
