"""Shared fixtures: the suite's own local stack, started once per pytest session through the platform's
own supervisor (the same code as `streamflow up`; there is no second way of starting services), and
the folder for test artefacts.

The stack is the session's own, never a person's `make up` stack: before anything reads the settings,
this module points the session (and every process it starts: Airflow, dbt, Flink) at its own state dir
``<state dir>/test-stack`` and free ports, sharing only the installation (see tests/stack_isolation.py).
The first fixture that needs services claims that dir (lock, stop leftovers of a crashed session, wipe),
and the services it starts are stopped at the end. Unit tests never request these fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack_isolation import StackInUse, apply_session_environment, claim

SESSION_ENV = apply_session_environment(os.environ)   # before any settings are built

from streamflow.settings import Settings, load_settings  # noqa: E402
from streamflow.stack import supervisor  # noqa: E402
from streamflow.topics import ensure_topics  # noqa: E402
from streamflow.warehouse import apply_migrations  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """A git-ignored folder for artefacts a person may want to look at after the run."""
    path = REPO_ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """The session's settings, with its test stack claimed (locked and wiped) for the whole session."""
    test_settings = load_settings()
    try:
        with claim(test_settings):
            yield test_settings
    except StackInUse as error:
        pytest.exit(f"test stack unavailable: {error}", returncode=3)


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """PostgreSQL + Kafka up (the session's own), bronze migrations applied, pipeline topics created."""
    try:
        supervisor.up(settings, ["postgres", "kafka"])
        apply_migrations(settings)
        ensure_topics(settings)
        yield settings
    finally:
        _stop_flink_jobs(settings)
        supervisor.down(settings)


@pytest.fixture(scope="session")
def airflow_stack(stack: Settings) -> Iterator[Settings]:
    """Airflow's four processes on top of ``stack``."""
    try:
        supervisor.up(stack, ["airflow"])
        yield stack
    finally:
        supervisor.down(stack, ["airflow"])


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Settings) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def warehouse_dsn(stack: Settings) -> str:
    return stack.warehouse_dsn


def _stop_flink_jobs(settings: Settings) -> None:
    from streamflow.runtime import local_jobs

    local_jobs.stop_all(settings)
