"""The one typed settings object of the platform.

Every knob is an environment variable with the ``STREAMFLOW_`` prefix (``STREAMFLOW_KAFKA_PORT``,
``STREAMFLOW_RUNTIME``...). Values are validated when the object is built, so a bad configuration
fails at start-up with a message that names the variable, instead of half-way through a DAG run.
Nothing else in the code base reads ``os.environ`` for platform configuration.

A ``STREAMFLOW_*`` variable that is neither a setting nor one of the documented
:data:`PLATFORM_VARIABLES` is an error (with the closest valid name): a typo in a variable's name
would otherwise be ignored and the default used without a word.

The vocabulary (enums, :class:`SettingsError`, :data:`PLATFORM_VARIABLES`) is in
:mod:`streamflow.settings_types` and the rules in :mod:`streamflow.settings_checks`; every name is
imported from here.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamflow.settings_checks import (
    check_cron,
    check_distinct_ports,
    check_http_url,
    check_kubernetes_endpoints,
    check_loopback,
    check_topic_name,
    explain,
    read_or_create_secret,
    unknown_variables,
)
from streamflow.settings_layout import SettingsLayout
from streamflow.settings_types import (
    CRON_PRESETS,
    ENV_PREFIX,
    PLATFORM_VARIABLES,
    REPO_ROOT,
    WAREHOUSE_CONN_ID,
    DbtExecutionMode,
    Runtime,
    SettingsError,
)

__all__ = [
    "CRON_PRESETS", "ENV_PREFIX", "PLATFORM_VARIABLES", "REPO_ROOT", "WAREHOUSE_CONN_ID", "DbtExecutionMode",
    "Runtime", "Settings", "SettingsError", "get_settings", "load_settings", "read_or_create_secret",
    "unknown_variables",
]


class Settings(SettingsLayout, BaseSettings):
    """Typed, validated platform configuration (see README 'Configuration' for every variable).

    The folders derived from ``state_dir``/``install_dir`` (venvs, logs, dbt artefacts...) come from
    :class:`~streamflow.settings_layout.SettingsLayout`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    runtime: Runtime = Runtime.LOCAL
    repo_root: Path = REPO_ROOT
    # What a stack *is* (data, logs, pid files, secrets) lives under state_dir; what it *runs* (venvs,
    # jars, tools: slow to build, read-only afterwards) under install_dir. Two stacks - a person's and
    # the test suite's - can then share one installation without sharing any data.
    state_dir: Path = REPO_ROOT / ".streamflow"
    install_dir: Path = Field(default_factory=lambda data: data["state_dir"])
    host: str = "127.0.0.1"

    # PostgreSQL (warehouse + Airflow metadata). The password is generated at first start and kept
    # under the state dir with owner-only permissions unless STREAMFLOW_POSTGRES_PASSWORD is set
    # (unset = generate; set but empty = an error, never an empty password).
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(55432, ge=1024, le=65535)
    postgres_user: str = "streamflow"
    postgres_password: str | None = None
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

    # Flink (local runtime: one cluster for the pipeline's jobs on the base port, RPC base+1000; ADR 0013).
    flink_rest_port_base: int = Field(18081, ge=1024, le=65000)
    flink_checkpoint_interval_s: int = Field(10, ge=1, le=3600)

    # Kubernetes runtime.
    k8s_namespace_processing: str = "streamflow-processing"
    k8s_in_cluster: bool = True
    k8s_config_file: str = ""
    # A folder laid out like k8s/base (flink/<job>.yaml, generator/pod-template.yaml) whose manifests the
    # Kubernetes runtime applies instead of k8s/base's: an overlay rendered per file (images, endpoints,
    # resources of your cluster). Empty: k8s/base.
    k8s_spec_dir: str = ""

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

    # Start-up timeout per service for the local supervisor. A service whose process dies fails at once;
    # this only bounds a slow start: Airflow's api-server measured 95-122 s on a 2-core host at load ~20.
    service_start_timeout_s: int = Field(300, ge=5, le=1800)

    @model_validator(mode="before")
    @classmethod
    def _only_known_variables(cls, data: Any) -> Any:
        """Refuse ``STREAMFLOW_*`` variables that configure nothing (typos, renamed settings)."""
        problems = unknown_variables(os.environ, set(cls.model_fields))
        if problems:
            raise ValueError("; ".join(problems))
        return data

    @field_validator("host")
    @classmethod
    def _host_is_loopback(cls, value: str) -> str:
        return check_loopback(value)

    @field_validator("postgres_host")
    @classmethod
    def _postgres_host_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("postgres_password")
    @classmethod
    def _password_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is set but empty: unset it to have a password generated into the state dir's "
                             "secrets/, or set a real password")
        return value

    @field_validator("topic_transactions", "topic_alerts", "topic_metrics", "topic_dlq")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        return check_topic_name(value)

    @field_validator("k8s_spec_dir")
    @classmethod
    def _spec_dir_exists(cls, value: str) -> str:
        if value and not Path(value).is_dir():
            raise ValueError(f"is not a directory (got {value!r}); it must hold flink/<job>.yaml and "
                             "generator/pod-template.yaml like k8s/base, or be unset")
        return value

    @field_validator("quality_schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("alert_webhook_url", "airflow_base_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return check_http_url(value)

    @model_validator(mode="after")
    def _local_postgres_is_loopback(self) -> Settings:
        """The local runtime's PostgreSQL listens on postgres_host: loopback only, like every local service."""
        if self.runtime is Runtime.LOCAL:
            try:
                check_loopback(self.postgres_host)
            except ValueError as error:
                raise ValueError(f"{ENV_PREFIX}POSTGRES_HOST (with {ENV_PREFIX}RUNTIME=local): {error} "
                                 f"(got {self.postgres_host!r})") from None
        return self

    @model_validator(mode="after")
    def _kubernetes_needs_endpoints(self) -> Settings:
        """On Kubernetes nothing is generated locally: the connections must come from the deployment."""
        if self.runtime is Runtime.KUBERNETES:
            check_kubernetes_endpoints(self.kafka_bootstrap_servers, self.postgres_password)
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        ports = {
            "POSTGRES_PORT": self.postgres_port,
            "KAFKA_PORT": self.kafka_port,
            "KAFKA_CONTROLLER_PORT": self.kafka_controller_port,
            "AIRFLOW_PORT": self.airflow_port,
        }
        # the pipeline's jobs share one local Flink cluster (ADR 0013): its REST port is the base
        ports["FLINK_REST_PORT_BASE"] = self.flink_rest_port_base
        check_distinct_ports(ports)
        return self

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
        if self.postgres_password is not None:
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


    def runtime_env(self) -> dict[str, str]:
        """The settings that choose and configure the runtime, as the variables that set them: the Airflow
        processes the stack starts must build the same runtime as the ``streamflow`` command that started
        them, also when that command's settings were not all read from its own environment."""
        env = {f"{ENV_PREFIX}RUNTIME": self.runtime.value}
        if self.runtime is Runtime.KUBERNETES:
            env |= {
                f"{ENV_PREFIX}K8S_NAMESPACE_PROCESSING": self.k8s_namespace_processing,
                f"{ENV_PREFIX}K8S_IN_CLUSTER": str(self.k8s_in_cluster).lower(),
                f"{ENV_PREFIX}K8S_CONFIG_FILE": self.k8s_config_file,
                f"{ENV_PREFIX}K8S_SPEC_DIR": self.k8s_spec_dir,
                f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
                f"{ENV_PREFIX}POSTGRES_PASSWORD": self.postgres_password or "",
            }
        return env

    def airflow_connections_env(self) -> dict[str, str]:
        """The warehouse as the Airflow connection ``streamflow_postgres`` (``AIRFLOW_CONN_*``, JSON form):
        Cosmos builds dbt's profile from it (PostgresUserPasswordProfileMapping), as any Airflow user
        would expect; on Kubernetes the same variable comes from a Secret."""
        conn = {"conn_type": "postgres", "host": self.postgres_host, "port": self.postgres_port,
                "login": self.postgres_user, "password": self.resolved_postgres_password,
                "schema": self.warehouse_db}
        return {f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}": json.dumps(conn)}


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings from the environment; raise SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(explain(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment does not change under a running process)."""
    return load_settings()
