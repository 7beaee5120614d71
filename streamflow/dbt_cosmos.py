"""Cosmos configuration for the StreamFlow dbt project, one small object per concern.

- Project: rendered from the manifest produced at set-up (``LoadMode.DBT_MANIFEST``: parsing a DAG
  file costs ~0.3 s instead of 7-10 s with ``dbt ls``).
- Profile: built by Cosmos from the Airflow connection ``streamflow_postgres`` (``AIRFLOW_CONN_*``,
  generated from the settings locally, from a Secret on Kubernetes) with
  ``PostgresUserPasswordProfileMapping``: the password reaches dbt as an env var, never a file. The
  same fields as ``dbt/profiles.yml``, which `dbt` by hand and the CLI keep using.
- Execution: dbt lives in its own venv and is invoked as a subprocess. ``STREAMFLOW_DBT_EXECUTION_MODE``
  picks how (ADR 0008): ``watcher`` (default) runs one ``dbt build`` per task group (a producer
  task) and turns each model into a run and a test task that follow its progress, so the group
  costs one dbt start-up instead of one per model; a failed model's task is still retried on its
  own (Cosmos then runs that model alone). ``local`` runs one ``dbt build --select <model>``
  process per model task (ADR 0007).
- Render: ``local`` uses ``TestBehavior.BUILD`` (the model and its tests in one process and one
  task); the watcher has no per-model build task, so each model's tests get a task right after it
  (``TestBehavior.AFTER_EACH``), fed by the same producer run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import yaml
from airflow.sdk import TaskGroup
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
from cosmos.profiles import PostgresUserPasswordProfileMapping

from streamflow.catalog import dbt_selectors
from streamflow.settings import WAREHOUSE_CONN_ID, DbtExecutionMode, Settings

PROFILE_NAME = "streamflow"
TARGET_NAME = "local"
# Watcher sensors poke in their worker slot every 2 s rather than defer: resuming a deferred task
# starts a second task process per model, the dominant cost on a 2-core host.
WATCHER_SENSOR_ARGS: dict[str, Any] = {"deferrable": False, "poke_interval": 2}

SILVER = dbt_selectors("silver")
GOLD = dbt_selectors("gold")
ALL_LAYERS_GROUP = "dbt_models"


@dataclass(frozen=True)
class ModePlan:
    """Everything that differs between the two execution modes, decided once by :func:`mode_plan`."""

    execution_mode: ExecutionMode
    test_behavior: TestBehavior
    #: Operator arguments of the watcher's producer task (None: no producer).
    setup_operator_args: dict[str, Any] | None
    #: Added to every model task's operator arguments.
    operator_args: dict[str, Any] = field(default_factory=dict)
    #: The task groups, in the order they run: (group id, dbt selectors).
    groups: tuple[tuple[str, list[str]], ...] = ()


def mode_plan(settings: Settings) -> ModePlan:
    """The one place ``STREAMFLOW_DBT_EXECUTION_MODE`` is read.

    ``watcher``: one group over all layers, so one ``dbt build`` runs them in dependency order and a
    test that reads both layers (silver vs gold reconciliation) runs in the same build as both its
    models; two groups would make the silver model's test task wait for a test that only the gold
    build runs. The producer builds the whole selection in one command, so it needs the same
    ``indirect_selection`` as the model tasks; there is no per-model ``dbt build`` task, so each
    model's tests get a task right after it (AFTER_EACH).
    ``local``: ``dbt_staging`` (staging + intermediate) then ``dbt_marts``, each model's task a
    ``dbt build`` of the model and its tests (BUILD)."""
    if settings.dbt_execution_mode is DbtExecutionMode.WATCHER:
        return ModePlan(
            execution_mode=ExecutionMode.WATCHER,
            test_behavior=TestBehavior.AFTER_EACH,
            setup_operator_args={"indirect_selection": TestIndirectSelection.BUILDABLE.value},
            operator_args=dict(WATCHER_SENSOR_ARGS),
            groups=((ALL_LAYERS_GROUP, SILVER + GOLD),),
        )
    return ModePlan(execution_mode=ExecutionMode.LOCAL, test_behavior=TestBehavior.BUILD, setup_operator_args=None,
                    groups=(("dbt_staging", SILVER), ("dbt_marts", GOLD)))


def project_config(settings: Settings) -> ProjectConfig:
    return ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        manifest_path=settings.dbt_target_dir / "manifest.json",
        install_dbt_deps=False,
        partial_parse=True,
    )


#: Fields of the connection itself: they come from the Airflow connection, never from profiles.yml.
CONNECTION_FIELDS = frozenset({"type", "host", "port", "user", "password", "dbname"})


def profile_args(settings: Settings) -> dict[str, Any]:
    """dbt/profiles.yml's other fields of the target (schema, threads, timeouts, with their env_var
    defaults, which dbt renders): one home for them, whether dbt runs by hand or under Cosmos."""
    profiles = yaml.safe_load((settings.dbt_project_dir / "profiles.yml").read_text())
    target = profiles[PROFILE_NAME]["outputs"][TARGET_NAME]
    return {key: value for key, value in target.items() if key not in CONNECTION_FIELDS}


def profile_config(settings: Settings) -> ProfileConfig:
    mapping = PostgresUserPasswordProfileMapping(conn_id=WAREHOUSE_CONN_ID, profile_args=profile_args(settings))
    return ProfileConfig(profile_name=PROFILE_NAME, target_name=TARGET_NAME, profile_mapping=mapping)


def execution_config(settings: Settings, plan: ModePlan) -> ExecutionConfig:
    # BUILDABLE: a test that spans several models (e.g. silver vs gold reconciliation) runs with the
    # last of them, never with a parent whose sibling has not been built yet.
    return ExecutionConfig(
        execution_mode=plan.execution_mode,
        dbt_executable_path=str(settings.dbt_executable),
        invocation_mode=InvocationMode.SUBPROCESS,
        test_indirect_selection=TestIndirectSelection.BUILDABLE,
        setup_operator_args=plan.setup_operator_args,
    )


def render_config(settings: Settings, select: list[str], plan: ModePlan) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=select,
        test_behavior=plan.test_behavior,
        dbt_executable_path=str(settings.dbt_executable),
        invocation_mode=InvocationMode.SUBPROCESS,
    )


def dbt_group(group_id: str, select: list[str], settings: Settings, plan: ModePlan | None = None,
              **operator_args: Any) -> DbtTaskGroup:
    """A Cosmos task group: one Airflow task per dbt model in ``select``."""
    plan = plan or mode_plan(settings)
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project_config(settings),
        profile_config=profile_config(settings),
        execution_config=execution_config(settings, plan),
        render_config=render_config(settings, select, plan),
        operator_args={**plan.operator_args, **operator_args},  # deps: ProjectConfig.install_dbt_deps
        default_args={"retries": 1},
    )


def dbt_layers(settings: Settings) -> tuple[TaskGroup, ...]:
    """Silver then gold: the task groups in the order they run, each wired to the next (one group in
    ``watcher`` mode, two in ``local`` mode; see :func:`mode_plan`). The DAG wires the first one
    after its upstream tasks and its downstream tasks after the last one."""
    plan = mode_plan(settings)
    groups = tuple(dbt_group(group_id, select, settings, plan) for group_id, select in plan.groups)
    for upstream, downstream in pairwise(groups):
        upstream >> downstream
    return groups
