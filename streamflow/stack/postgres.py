"""PostgreSQL from Debian's package, run as a non-root OS user with data under the state dir.

The server refuses to run as root, so when the supervisor is root the server runs as the
``postgres`` OS user (``STREAMFLOW_POSTGRES_OS_USER``) and owns its data and socket directories.
The superuser ``streamflow`` gets a generated password (never a default one in the repo).
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from streamflow.logs import get_log
from streamflow.stack import process
from streamflow.stack.base import Service

log = get_log("streamflow.stack.postgres")


def find_pg_bin() -> Path:
    """The newest installed server's bin dir (Debian: /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise process.ServiceError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run `make setup` "
            "(it installs Debian's postgresql package)"
        )
    return candidates[-1].parent


class PostgresService(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for clients to disconnect

    @property
    def base(self) -> Path:
        return self.settings.state_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def os_user(self) -> str | None:
        """Run as the configured OS user when we are root; as ourselves otherwise."""
        if os.geteuid() != 0:
            return None
        user = self.settings.postgres_os_user
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise process.ServiceError(
                f"OS user {user!r} for PostgreSQL does not exist: create it (useradd --system {user}) "
                "or set STREAMFLOW_POSTGRES_OS_USER"
            ) from None
        return user

    def _chown(self, path: Path) -> None:
        user = self.os_user
        if user is not None:
            shutil.chown(path, user=user, group=pwd.getpwnam(user).pw_gid)

    def _ensure_reachable(self, path: Path) -> None:
        """Let the PostgreSQL OS user traverse the folders above its data directory.

        A checkout under a root-only folder (``mktemp -d`` makes 0700 directories) would otherwise
        stop the server at start-up with "permission denied". Only the traverse bit (o+x) is added,
        never read or write, and each change is logged.
        """
        user = self.os_user
        if user is None:
            return
        for folder in reversed(path.resolve().parents):
            info = folder.stat()
            if info.st_mode & stat.S_IXOTH or info.st_uid == pwd.getpwnam(user).pw_uid:
                continue
            os.chmod(folder, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            log.warning("allowed the PostgreSQL OS user to traverse a parent folder of its data dir",
                        folder=str(folder), user=user, change="o+x (traverse only)")

    def prepare(self) -> None:
        self._ensure_reachable(self.base)
        for directory in (self.base, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            self._chown(directory)
        os.chmod(self.socket_dir, 0o700)
        if (self.data_dir / "PG_VERSION").exists():
            return
        log.info("initialising PostgreSQL data directory (first start)", data_dir=self.data_dir)
        password = self.settings.resolved_postgres_password
        with tempfile.NamedTemporaryFile("w", dir=self.base, delete=False) as pw:
            pw.write(password)
        pwfile = Path(pw.name)
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [
                    str(find_pg_bin() / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", self.settings.postgres_user,
                    f"--pwfile={pwfile}",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                user=self.os_user,
                group=self.os_user,
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise process.ServiceError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        s = self.settings
        argv = [
            str(find_pg_bin() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(s.postgres_port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={s.postgres_host}",
            "-c", "max_connections=200",
            "-c", "shared_buffers=256MB",
            "-c", "work_mem=32MB",
            "-c", "maintenance_work_mem=256MB",
            "-c", "max_wal_size=2GB",
            "-c", "log_min_messages=warning",
        ]
        process.spawn(self.name, argv, pid_file=self.pid_file, log_file=self.log_file, user=self.os_user)

    def _connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        s = self.settings
        return psycopg.connect(
            host=s.postgres_host,
            port=s.postgres_port,
            user=s.postgres_user,
            password=s.resolved_postgres_password,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def ready(self) -> bool:
        with self._connect() as conn:
            conn.execute("SELECT 1")
        return True

    def after_ready(self) -> None:
        with self._connect() as conn:
            for db in (self.settings.warehouse_db, self.settings.airflow_db):
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                    log.info("created database", database=db)

    def describe(self) -> str:
        return f"{self.settings.postgres_host}:{self.settings.postgres_port} as {self.settings.postgres_user}" + (
            f" (os user {self.os_user or getpass.getuser()})"
        )
