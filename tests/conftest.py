"""Shared fixtures: the real local stack, started once per pytest session through the platform's own
supervisor (the same code as `streamflow up`; there is no second way of starting services), and the
folder for test artefacts.

Services that were already running (a developer's stack) are reused and left running; services this
session started are stopped at the end. Unit tests never request these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamflow.settings import Settings, load_settings
from streamflow.stack import supervisor
from streamflow.topics import ensure_topics
from streamflow.warehouse import apply_migrations

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """A git-ignored folder for artefacts a person may want to look at after the run."""
    path = REPO_ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path

@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """PostgreSQL + Kafka up, bronze migrations applied, pipeline topics created."""
    started = supervisor.up(settings, ["postgres", "kafka"])
    apply_migrations(settings)
    ensure_topics(settings)
    yield settings
    if started:
        _stop_flink_jobs(settings)
        supervisor.down(settings, started)


@pytest.fixture(scope="session")
def airflow_stack(stack: Settings) -> Iterator[Settings]:
    """Airflow's four processes on top of ``stack``."""
    started = supervisor.up(stack, ["airflow"])
    yield stack
    if started:
        supervisor.down(stack, started)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Settings) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def warehouse_dsn(stack: Settings) -> str:
    return stack.warehouse_dsn


def _stop_flink_jobs(settings: Settings) -> None:
    from streamflow.runtime import local_jobs

    local_jobs.stop_all(settings)
