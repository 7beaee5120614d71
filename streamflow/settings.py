"""The one typed settings object of the platform.

Every knob is an environment variable with the ``STREAMFLOW_`` prefix (``STREAMFLOW_KAFKA_PORT``,
``STREAMFLOW_RUNTIME``...). Values are validated when the object is built, so a bad configuration
fails at start-up with a message that names the variable, instead of half-way through a DAG run.
Nothing else in the code base reads ``os.environ`` for platform configuration.
"""

from __future__ import annotations

import os
import re
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "STREAMFLOW_"

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CRON_FIELD_RE = re.compile(r"^[0-9*/,\-A-Za-z?]+$")


class Runtime(StrEnum):
    """Where jobs and the generator run; DAG files never change between the two."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


class DbtExecutionMode(StrEnum):
    """How Cosmos runs the per-model dbt tasks (ADR 0008; ``local`` is ADR 0007)."""

    LOCAL = "local"  # one `dbt build --select <model>` process per task
    WATCHER = "watcher"  # one `dbt build` per task group; per-model tasks watch its progress


class SettingsError(ValueError):
    """A configuration problem, phrased for the person who has to fix it."""


def _check_cron(expr: str) -> str:
    fields = expr.split()
    if expr.startswith("@"):
        if expr not in {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly"}:
            raise ValueError(f"unknown cron preset {expr!r}")
        return expr
    if len(fields) != 5 or not all(_CRON_FIELD_RE.match(f) for f in fields):
        raise ValueError(f"{expr!r} is not a 5-field cron expression (e.g. '*/15 * * * *')")
    return expr


class Settings(BaseSettings):
    """Typed, validated platform configuration (see README 'Configuration' for every variable)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    runtime: Runtime = Runtime.LOCAL
    repo_root: Path = REPO_ROOT
    state_dir: Path = REPO_ROOT / ".streamflow"
    host: str = "127.0.0.1"

    # PostgreSQL (warehouse + Airflow metadata). The password is generated at first start and kept
    # under the state dir with owner-only permissions unless STREAMFLOW_POSTGRES_PASSWORD is set.
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(55432, ge=1024, le=65535)
    postgres_user: str = "streamflow"
    postgres_password: str = ""
    postgres_os_user: str = "postgres"
    warehouse_db: str = "warehouse"
    airflow_db: str = "airflow"

    # Kafka (KRaft single node locally, Strimzi on Kubernetes).
    kafka_bootstrap_servers: str = ""
    kafka_port: int = Field(59092, ge=1024, le=65535)
    kafka_controller_port: int = Field(59093, ge=1024, le=65535)
    kafka_heap: str = "512m"
    topic_transactions: str = "transactions.raw"
    topic_alerts: str = "fraud.alerts"
    topic_metrics: str = "metrics.realtime"
    topic_dlq: str = "dlq.errors"
    topic_partitions: int = Field(3, ge=1, le=1000)
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)

    # Airflow.
    airflow_port: int = Field(8080, ge=1024, le=65535)
    airflow_base_url: str = ""
    airflow_admin_user: str = "admin"
    airflow_parallelism: int = Field(8, ge=1, le=256)

    # Flink (local runtime: one cluster per job, REST ports base, base+1, ...).
    flink_rest_port_base: int = Field(18081, ge=1024, le=65000)
    flink_checkpoint_interval_s: int = Field(10, ge=1, le=3600)

    # Kubernetes runtime.
    k8s_namespace_processing: str = "streamflow-processing"
    k8s_in_cluster: bool = True
    k8s_config_file: str = ""

    # Pipeline behaviour.
    generator_events: int = Field(50_000, ge=1)
    generator_events_per_second: int = Field(0, ge=0)
    generator_seed: int = 42
    bronze_wait_timeout_s: int = Field(600, ge=10)
    quality_schedule: str = "*/15 * * * *"
    alert_webhook_url: str = ""

    # dbt (own venv locally; baked into the Airflow image on Kubernetes).
    dbt_executable_path: str = ""
    dbt_artifacts_dir: str = ""
    dbt_execution_mode: DbtExecutionMode = DbtExecutionMode.WATCHER

    # Start-up timeouts for the local supervisor.
    service_start_timeout_s: int = Field(120, ge=5, le=1800)

    @field_validator("host", "postgres_host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("topic_transactions", "topic_alerts", "topic_metrics", "topic_dlq")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        if not _TOPIC_RE.match(value):
            raise ValueError(f"{value!r} is not a valid Kafka topic name ([A-Za-z0-9._-], 1-249 chars)")
        return value

    @field_validator("quality_schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("alert_webhook_url", "airflow_base_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _kubernetes_needs_endpoints(self) -> Settings:
        """On Kubernetes nothing is generated locally: the connections must come from the deployment."""
        if self.runtime is not Runtime.KUBERNETES:
            return self
        missing = [f"{ENV_PREFIX}{name}" for name, value in (
            ("KAFKA_BOOTSTRAP_SERVERS", self.kafka_bootstrap_servers),
            ("POSTGRES_PASSWORD", self.postgres_password),
        ) if not value]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} must be set when {ENV_PREFIX}RUNTIME=kubernetes (the warehouse "
                "connection and the Kafka bootstrap address come from the deployment: see k8s/helm/airflow-values.yaml)"
            )
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        ports = {
            "POSTGRES_PORT": self.postgres_port,
            "KAFKA_PORT": self.kafka_port,
            "KAFKA_CONTROLLER_PORT": self.kafka_controller_port,
            "AIRFLOW_PORT": self.airflow_port,
        }
        for offset in range(3):
            ports[f"FLINK_REST_PORT_BASE+{offset}"] = self.flink_rest_port_base + offset
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ValueError(
                    f"{ENV_PREFIX}{name} and {ENV_PREFIX}{seen[port]} both use port {port}; give each its own"
                )
            seen[port] = name
        return self

    # ---- derived paths -------------------------------------------------------------------------
    @property
    def venvs_dir(self) -> Path:
        return self.state_dir / "venvs"

    @property
    def jars_dir(self) -> Path:
        return self.state_dir / "jars"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def dbt_project_dir(self) -> Path:
        return self.repo_root / "dbt"

    @property
    def dbt_artifacts(self) -> Path:
        return Path(self.dbt_artifacts_dir) if self.dbt_artifacts_dir else self.state_dir / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        """Where set-up writes the manifest Cosmos renders the DAGs from."""
        return self.dbt_artifacts / "target"

    @property
    def dbt_docs_dir(self) -> Path:
        """Where bootstrap_pipeline publishes dbt docs (index, manifest, catalog) for the lineage portal."""
        return self.dbt_artifacts / "docs"

    @property
    def dbt_executable(self) -> Path:
        if self.dbt_executable_path:
            return Path(self.dbt_executable_path)
        return self.venvs_dir / "dbt" / "bin" / "dbt"

    def venv_python(self, name: str) -> Path:
        return self.venvs_dir / name / "bin" / "python"

    # ---- derived endpoints ---------------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def airflow_url(self) -> str:
        return self.airflow_base_url or f"http://{self.host}:{self.airflow_port}"

    @property
    def resolved_postgres_password(self) -> str:
        """The env var if set, else the generated secret under the state dir (created on demand)."""
        if self.postgres_password:
            return self.postgres_password
        return read_or_create_secret(self.secrets_dir / "postgres_password")

    def dsn(self, database: str) -> str:
        user = quote(self.postgres_user, safe="")
        password = quote(self.resolved_postgres_password, safe="")
        return f"postgresql://{user}:{password}@{self.postgres_host}:{self.postgres_port}/{database}"

    @property
    def warehouse_dsn(self) -> str:
        return self.dsn(self.warehouse_db)

    @property
    def airflow_db_dsn(self) -> str:
        return self.dsn(self.airflow_db)

    @property
    def warehouse_jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.postgres_host}:{self.postgres_port}/{self.warehouse_db}"

    @property
    def topics(self) -> list[str]:
        return [self.topic_transactions, self.topic_alerts, self.topic_metrics, self.topic_dlq]

    def warehouse_env(self) -> dict[str, str]:
        """Connection variables read by dbt's profile (dbt/profiles.yml) and the Cosmos profile mapping."""
        return {
            "STREAMFLOW_WAREHOUSE_HOST": self.postgres_host,
            "STREAMFLOW_WAREHOUSE_PORT": str(self.postgres_port),
            "STREAMFLOW_WAREHOUSE_USER": self.postgres_user,
            "STREAMFLOW_WAREHOUSE_PASSWORD": self.resolved_postgres_password,
            "STREAMFLOW_WAREHOUSE_DB": self.warehouse_db,
        }


def read_or_create_secret(path: Path, nbytes: int = 24) -> str:
    """Return a generated secret, creating it (mode 0600, dir 0700) the first time it is needed."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        value: Any = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{ENV_PREFIX}{field.upper()}: {item['msg']}{shown}")
    return "invalid StreamFlow configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings from the environment; raise SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment does not change under a running process)."""
    return load_settings()
