"""Airflow 3 on the machine: api-server, scheduler, dag-processor and triggerer (LocalExecutor).

All processes share one environment built here from the settings: the Postgres metadata DB, the
repo's ``dags/`` and ``plugins/``, a generated JWT secret and Fernet key (identical across processes,
otherwise task execution fails authentication), and Cosmos telemetry off (no internet here).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from pathlib import Path

from streamflow.logs import get_log
from streamflow.settings import Settings, read_or_create_secret
from streamflow.stack import process
from streamflow.stack.base import Service

log = get_log("streamflow.stack.airflow")

AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

#: Seconds before the dag-processor re-parses a DAG file that did not change (see `airflow_env`).
DAG_REPARSE_INTERVAL_S = 600


def airflow_bin(settings: Settings) -> Path:
    path = settings.venvs_dir / "airflow" / "bin" / "airflow"
    if not path.exists():
        raise process.ServiceError(f"{path} missing: run `make setup` to create the Airflow environment")
    return path


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment every Airflow process (and `airflow` CLI call) of the local stack gets."""
    secrets = settings.secrets_dir
    fernet = secrets / "airflow_fernet_key"
    if not fernet.exists():
        read_or_create_secret(fernet)  # creates the file with 0600, then overwrite with a Fernet key
        fernet.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    pg = settings.dsn(settings.airflow_db).replace("postgresql://", "postgresql+psycopg2://", 1)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(settings.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.repo_root / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": fernet.read_text().strip(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
            "AIRFLOW__API__HOST": settings.host,
            "AIRFLOW__API__PORT": str(settings.airflow_port),
            "AIRFLOW__API__BASE_URL": settings.airflow_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": read_or_create_secret(secrets / "airflow_secret_key"),
            "AIRFLOW__API_AUTH__JWT_SECRET": read_or_create_secret(secrets / "airflow_jwt_secret"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "15",
            # Re-parse an unchanged DAG file every 10 min, not every 30 s: parsing our three files costs
            # ~6 s of CPU (Cosmos renders ~40 dbt tasks), i.e. a fifth of a core all the time on a 2-core
            # host. An edited file is still re-parsed at once: with the default `modified_time` sort mode the
            # processor queues a file whose mtime is newer than its last parse. What the Cosmos DAGs render
            # from (the dbt manifest) is not a DAG file, so `streamflow prepare` touches them when it changes.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(DAG_REPARSE_INTERVAL_S),
            "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # The scheduler sleeps this long after a loop with nothing to do (default 1 s); a task that ends
            # meanwhile waits for it, so every dependency hop cost ~1.1 s. Measured on dbt_transform (chain
            # of Cosmos sensor tasks after dbt ends): tail 7.0 -> 4.7 s. Cost: the idle scheduler and its
            # database sessions use 6.4 % of a core instead of 3.6 %.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            # A task whose process died with the scheduler is noticed after this long and retried
            # (default 300 s; tasks heartbeat every few seconds, so 90 s is safe on a busy 2-core host).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "90",
            # After a scheduler crash its queued/running tasks are orphans; the restarted scheduler
            # resets them at this interval (default 300 s) once the old job missed its heartbeats.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "45",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.logs_dir / "airflow-tasks"),
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "SCARF_ANALYTICS": "false",
            **settings.runtime_env(),   # STREAMFLOW_RUNTIME and, on Kubernetes, how to reach the cluster
            "STREAMFLOW_STATE_DIR": str(settings.state_dir),
            "STREAMFLOW_INSTALL_DIR": str(settings.install_dir),
            **settings.airflow_connections_env(),   # the warehouse as connection streamflow_postgres
        }
    )
    env.update(settings.warehouse_env())
    return env


def admin_password(settings: Settings) -> str | None:
    """The admin password Airflow's simple auth manager generated on first start."""
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    try:
        return str(json.loads(path.read_text())[settings.airflow_admin_user])
    except (OSError, ValueError, KeyError):
        return None


def health(settings: Settings) -> dict[str, object]:
    with urllib.request.urlopen(f"{settings.airflow_url}/api/v2/monitor/health", timeout=3) as resp:  # noqa: S310
        return dict(json.loads(resp.read()))


class AirflowComponent(Service):
    """One Airflow process; the first one to start migrates the metadata DB (idempotent)."""

    def __init__(self, settings: Settings, component: str) -> None:
        super().__init__(settings)
        self.component = component
        self.name = f"airflow-{component}"

    def prepare(self) -> None:
        self.settings.airflow_home.mkdir(parents=True, exist_ok=True)
        if self.component == "api-server":
            migrate_metadata_db(self.settings)

    def start(self) -> None:
        argv = [str(airflow_bin(self.settings)), self.component]
        process.spawn(
            self.name,
            argv,
            pid_file=self.pid_file,
            log_file=self.log_file,
            env=airflow_env(self.settings),
            cwd=self.settings.airflow_home,
        )

    def ready(self) -> bool:
        status = health(self.settings)
        if self.component == "api-server":
            return True
        key = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}[self.component]
        entry = status.get(key)
        return isinstance(entry, dict) and entry.get("status") == "healthy"

    def describe(self) -> str:
        if self.component == "api-server":
            return self.settings.airflow_url
        return ""


def airflow_version(settings: Settings) -> str:
    """The Airflow environment's installed version, from its package metadata: ``import airflow`` in a
    subprocess took 5-11 s of every start, reading ``apache_airflow-*.dist-info`` takes milliseconds."""
    found = sorted(settings.venvs_dir.glob("airflow/lib/python*/site-packages/apache_airflow-*.dist-info/METADATA"))
    if len(found) != 1:
        raise process.ServiceError(
            f"expected one apache-airflow installation in {settings.venvs_dir / 'airflow'}, found {len(found)}: "
            "run `make setup` to (re)create the Airflow environment")
    for line in found[0].read_text(errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise process.ServiceError(f"{found[0]} names no Version: run `make setup` to reinstall the Airflow environment")


def migrate_metadata_db(settings: Settings) -> None:
    """`airflow db migrate`, skipped when this Airflow version already migrated this database."""
    stamp = settings.airflow_home / ".db-migrated"
    version = airflow_version(settings)
    key = f"{version} {settings.postgres_port} {settings.airflow_db}"
    if stamp.exists() and stamp.read_text() == key:
        return
    log.info("migrating the Airflow metadata database (first start, ~30 s)", version=version)
    result = subprocess.run(
        [str(airflow_bin(settings)), "db", "migrate"],
        env=airflow_env(settings), capture_output=True, text=True, check=False, cwd=settings.airflow_home,
    )
    if result.returncode != 0:
        raise process.ServiceError(f"`airflow db migrate` failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    stamp.write_text(key)
