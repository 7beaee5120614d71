"""A throwaway warehouse database for one test module: migrations applied, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from streamflow.settings import Settings, load_settings
from streamflow.warehouse import apply_migrations


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with ``changes`` applied (the resolved password carried over)."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    values["postgres_password"] = settings.resolved_postgres_password
    return load_settings(**{**values, **changes})


@contextmanager
def scratch_warehouse(stack: Settings, prefix: str, **changes: Any) -> Iterator[Settings]:
    """Settings pointing at a new database ``<prefix>_<random>`` on the test stack's server."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # generated name
    settings = with_settings(stack, warehouse_db=name, **changes)
    try:
        apply_migrations(settings)
        yield settings
    finally:
        with psycopg.connect(stack.warehouse_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
