"""Bronze migrations: versioned SQL files owned by the platform, applied once each, in order.

Migrations are idempotent DDL (``IF NOT EXISTS``) *and* recorded in ``public.streamflow_migrations``,
so re-running ``bootstrap_pipeline`` is harmless and a newer file is applied exactly once.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.warehouse")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^V(\d{3})__[a-z0-9_]+\.sql$")


def migration_files() -> list[Path]:
    files = sorted(p for p in MIGRATIONS_DIR.glob("*.sql"))
    for path in files:
        if not _NAME.match(path.name):
            raise ValueError(f"migration {path.name} must be named V<NNN>__<snake_case>.sql")
    return files


def apply_migrations(settings: Settings) -> list[str]:
    """Apply pending migrations in one transaction each; return the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=5) as conn:
        # Serialise concurrent runners (two DAG runs, a test and a DAG) on an advisory lock.
        conn.execute("SELECT pg_advisory_lock(727001)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.streamflow_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.commit()
        done = {row[0] for row in conn.execute("SELECT version FROM public.streamflow_migrations")}
        for path in migration_files():
            version = path.name.split("__", 1)[0]
            if version in done:
                continue
            with conn.transaction():
                conn.execute(path.read_text())  # type: ignore[arg-type]  # trusted file from the repo
                conn.execute("INSERT INTO public.streamflow_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
            log.info("applied migration", version=version, file=path.name)
        conn.execute("SELECT pg_advisory_unlock(727001)")
        conn.commit()
    return applied_now
