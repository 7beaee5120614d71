"""`streamflow psql [--db NAME] [psql args...]`: a psql session on the local warehouse.

The password is generated into the state dir at first start (never a default); typing it is the
step people get wrong, so this passes it through the environment (``PGPASSWORD``) of the psql
process only. The client is the one next to the server binaries (same major version), else the
``psql`` on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from streamflow.settings import Settings


class PsqlNotFound(RuntimeError):
    pass


def psql_binary() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1]
    on_path = shutil.which("psql")
    if on_path:
        return Path(on_path)
    raise PsqlNotFound("psql not found: install the PostgreSQL client (apt-get install postgresql-client)")


def command(settings: Settings, database: str | None = None,
            extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """argv and environment of a psql process connected to ``database`` (the warehouse by default)."""
    argv = [str(psql_binary()), "-h", settings.postgres_host, "-p", str(settings.postgres_port),
            "-U", settings.postgres_user, "-d", database or settings.warehouse_db, *extra]
    env = {**os.environ, "PGPASSWORD": settings.resolved_postgres_password, "PGCONNECT_TIMEOUT": "5",
           "PGAPPNAME": "streamflow-psql"}
    return argv, env


def exec_psql(settings: Settings, database: str | None = None, extra: Sequence[str] = ()) -> None:
    """Replace this process with psql (an interactive session keeps the terminal as it should)."""
    argv, env = command(settings, database, extra)
    os.execve(argv[0], argv, env)  # noqa: S606 - argv from the settings and the user's own arguments
