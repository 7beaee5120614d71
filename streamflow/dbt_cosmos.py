"""Cosmos configuration for the StreamFlow dbt project, one small object per concern.

- Project: rendered from the manifest produced at set-up (``LoadMode.DBT_MANIFEST``: parsing a DAG
  file costs ~0.3 s instead of 7-10 s with ``dbt ls``).
- Profile: the project's own ``dbt/profiles.yml`` (env-var based), the same one `dbt` uses by hand.
- Execution: dbt lives in its own venv and is invoked as a subprocess. ``STREAMFLOW_DBT_EXECUTION_MODE``
  picks how (ADR 0007): ``local`` runs one dbt process per model task; ``watcher`` runs one
  ``dbt build`` per task group (a producer task) and turns each model task into a sensor that
  follows it, so a group costs one dbt start-up instead of one per model. A failed model's task
  is still retried on its own (Cosmos then runs that model alone).
- Render: ``TestBehavior.BUILD`` - one ``dbt build`` per model runs the model and its tests in one
  process (half the processes of run + test), so each model's tests stay attached to it.
"""

from __future__ import annotations

from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

from streamflow.settings import DbtExecutionMode, Settings

PROFILE_NAME = "streamflow"
TARGET_NAME = "local"
# Watcher sensors: poll the producer's progress in the worker slot (no triggerer in the local stack)
# every 2 s, so a model's task turns green within ~2 s of dbt finishing it.
WATCHER_SENSOR_ARGS: dict[str, Any] = {"deferrable": False, "poke_interval": 2}


def project_config(settings: Settings) -> ProjectConfig:
    return ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=settings.dbt_target_dir / "manifest.json",
        install_dbt_deps=False,
        partial_parse=True,
    )


def profile_config(settings: Settings) -> ProfileConfig:
    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=TARGET_NAME,
        profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
    )


def execution_config(settings: Settings) -> ExecutionConfig:
    # BUILDABLE: a test that spans several models (e.g. silver vs gold reconciliation) runs with the
    # last of them, never with a parent whose sibling has not been built yet.
    watcher = settings.dbt_execution_mode is DbtExecutionMode.WATCHER
    return ExecutionConfig(
        execution_mode=ExecutionMode.WATCHER if watcher else ExecutionMode.LOCAL,
        dbt_executable_path=str(settings.dbt_executable),
        invocation_mode=InvocationMode.SUBPROCESS,
        test_indirect_selection=TestIndirectSelection.BUILDABLE,
    )


def render_config(settings: Settings, select: list[str]) -> RenderConfig:
    # The watcher has no per-model `dbt build` task (the producer builds everything, tests included):
    # a model's tests get their own sensor task right after it (AFTER_EACH) instead.
    watcher = settings.dbt_execution_mode is DbtExecutionMode.WATCHER
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=select,
        test_behavior=TestBehavior.AFTER_EACH if watcher else TestBehavior.BUILD,
        dbt_executable_path=str(settings.dbt_executable),
        invocation_mode=InvocationMode.SUBPROCESS,
    )


def dbt_group(group_id: str, select: list[str], settings: Settings, **operator_args: Any) -> DbtTaskGroup:
    """A Cosmos task group: one Airflow task per dbt model in ``select``."""
    if settings.dbt_execution_mode is DbtExecutionMode.WATCHER:
        operator_args = {**WATCHER_SENSOR_ARGS, **operator_args}
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project_config(settings),
        profile_config=profile_config(settings),
        execution_config=execution_config(settings),
        render_config=render_config(settings, select),
        operator_args={"install_deps": False, **operator_args},
        default_args={"retries": 1},
    )
