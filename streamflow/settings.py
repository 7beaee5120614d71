"""The one typed settings object of the platform.

Every knob is an environment variable with the ``STREAMFLOW_`` prefix (``STREAMFLOW_KAFKA_PORT``,
``STREAMFLOW_RUNTIME``...). Values are validated when the object is built, so a bad configuration
fails at start-up with a message that names the variable, instead of half-way through a DAG run.
Nothing else in the code base reads ``os.environ`` for platform configuration.

A ``STREAMFLOW_*`` variable that is neither a setting nor one of the documented
:data:`PLATFORM_VARIABLES` is an error (with the closest valid name): a typo in a variable's name
would otherwise be ignored and the default used without a word.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
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

#: ``STREAMFLOW_*`` variables that are not settings, and who sets or reads each. They share the prefix
#: because they belong to the platform, and processes the platform starts inherit them (Airflow task
#: processes, dbt subprocesses, Flink jobs): the unknown-variable check must let them through.
#: A new one is added here, with its owner, or the check (and tests/unit/streamflow) fails.
PLATFORM_VARIABLES: dict[str, str] = {
    # Set by Settings.warehouse_env() (local) or the Airflow Helm values (Kubernetes) for dbt.
    # (STREAMFLOW_WAREHOUSE_DB is also the warehouse_db setting, with the same value.)
    **{f"{ENV_PREFIX}WAREHOUSE_{part}": "warehouse connection for dbt: set by Settings.warehouse_env() and "
       "k8s/helm/airflow-values.yaml, read by dbt/profiles.yml and the Cosmos profile"
       for part in ("HOST", "PORT", "USER", "PASSWORD")},
    f"{ENV_PREFIX}DBT_SCHEMA": "dbt/profiles.yml: fallback schema of the dbt target (default silver)",
    f"{ENV_PREFIX}DBT_THREADS": "dbt/profiles.yml: dbt threads (default 2)",
    f"{ENV_PREFIX}EVENT_SCHEMA": "set for the Flink jobs (FlinkDeployment env, streamflow/runtime/flink_local.py), "
    "read by flink_app/events.py",
    f"{ENV_PREFIX}PYTHON": "scripts/setup.sh: the CPython 3.11 the venvs are built with",
    f"{ENV_PREFIX}IMAGE_TAG": "k8s/versions.env: tag of the streamflow/* images (scripts/build_images.sh)",
    f"{ENV_PREFIX}IMAGES_IMPORT_K3S": "scripts/build_images.sh: also import the images into k3s",
    f"{ENV_PREFIX}K8S_VERSION": "scripts/build_k8s_binaries.sh: Kubernetes version of the test control plane",
    f"{ENV_PREFIX}ETCD_VERSION": "scripts/build_k8s_binaries.sh: etcd version of the test control plane",
    f"{ENV_PREFIX}COREDNS_VERSION": "scripts/build_k8s_binaries.sh: CoreDNS version of the test cluster",
    f"{ENV_PREFIX}DEBIAN_MIRROR": "scripts/k8s_images.sh: Debian mirror for the image base (mmdebstrap)",
    f"{ENV_PREFIX}DEBIAN_SECURITY_MIRROR": "scripts/k8s_images.sh: Debian security mirror for the image base",
    f"{ENV_PREFIX}OCI_RUNTIME": "scripts/k8s_images.sh: OCI runtime used to build the images",
    f"{ENV_PREFIX}IMAGE_EXTRA_CA_DIR": "scripts/k8s_images.sh: extra CA certificates copied into the images",
    f"{ENV_PREFIX}VENDOR_DIR": "scripts/k8s_operator_build.sh: folder with the vendored operator sources",
    f"{ENV_PREFIX}K8S_BIN_DIR": "tests/k8s_testenv.py: prebuilt etcd/kube-apiserver/kubectl",
    f"{ENV_PREFIX}K8S_CRD_DIR": "tests/k8s_testenv.py: another folder of CRD files",
    f"{ENV_PREFIX}K8S_API_PORT": "scripts/k8s_api.sh, tests/k8s_testenv.py: fixed test API server port",
    f"{ENV_PREFIX}DBT_TEST_WAREHOUSE_DSN": "tests/integration/dbt: run the dbt tests against a throwaway server",
    f"{ENV_PREFIX}FAULT_EVENTS": "tests/integration/faults: events per fault-injection run",
    f"{ENV_PREFIX}FAULT_RATE": "tests/integration/faults: events/s of the fault-injection runs",
    f"{ENV_PREFIX}FAULT_CATCH_UP_S": "tests/integration/faults: catch-up timeout",
    f"{ENV_PREFIX}BENCH_WAREHOUSE_DSN": "bench/dbt_build.py: throwaway warehouse of the dbt benchmark",
    f"{ENV_PREFIX}BENCH_TEST_OUTPUT": "bench/reliability.py: reuse figures of an earlier test run",
    f"{ENV_PREFIX}BENCH_KAFKA": "bench/generator_throughput.py: broker of the generator benchmark",
    f"{ENV_PREFIX}BENCH_COLD_SETUP": "bench/stack_startup.py: also time a cold set-up",
}

#: Airflow's cron presets (airflow.sdk.definitions.timetables._cron.CRON_PRESETS) and ``@once``.
CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
_SCHEDULE_PRESETS = (*CRON_PRESETS, "@once")

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
    """Validate a DAG schedule the way Airflow will read it: a preset, or five cron fields that
    croniter (Airflow's own cron library) accepts *and* that fire at some point (``0 0 30 2 *`` parses
    but never runs). Six-field expressions are refused: croniter reads the sixth field as seconds."""
    if expr.startswith("@"):
        if expr not in _SCHEDULE_PRESETS:
            close = difflib.get_close_matches(expr, _SCHEDULE_PRESETS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown schedule preset: {hint}Airflow knows {', '.join(_SCHEDULE_PRESETS)}")
        return expr
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields; a cron expression has 5 "
                         "(minute hour day-of-month month day-of-week, e.g. '*/15 * * * *')")
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter  # Airflow's cron parser

    try:
        croniter(expr, datetime(2026, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError("never fires: no date matches it") from None
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ValueError(f"not a valid cron expression: {error}") from None
    return expr


def _check_loopback(value: str) -> str:
    """Only 127.0.0.0/8 or ``localhost``: the local stack has no authentication in front of Kafka,
    the Flink REST APIs or the Airflow log servers, so binding them elsewhere exposes them. IPv6
    (``::1``) is refused too: the local stack writes ``host:port`` into Kafka listeners and Flink
    REST URLs without the brackets an IPv6 address needs."""
    if value == "localhost":
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is not None and address.version == 6 and address.is_loopback:
        raise ValueError("IPv6 loopback is not supported (Kafka listeners and Flink REST URLs are built as "
                         "host:port); use 127.0.0.1")
    if address is None or not address.is_loopback:
        raise ValueError("not a loopback address: use 127.0.0.1 (any 127.x.y.z) or localhost; the local "
                         "services listen there without authentication")
    return value


def unknown_variables(environ: Mapping[str, str], fields: set[str]) -> list[str]:
    """``STREAMFLOW_*`` names in ``environ`` that are neither a setting nor a platform variable, each
    with the closest valid name. Case-insensitive, like pydantic-settings' reading of the variables."""
    valid = sorted({f"{ENV_PREFIX}{name.upper()}" for name in fields} | set(PLATFORM_VARIABLES))
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in valid:
            continue
        # Compared without the shared prefix, which would make every name look alike.
        suffixes = [v.removeprefix(ENV_PREFIX) for v in valid]
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
        hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "see README 'Configuration' for the valid names"
        problems.append(f"{name} is not a StreamFlow setting ({hint})")
    return problems


class Settings(BaseSettings):
    """Typed, validated platform configuration (see README 'Configuration' for every variable)."""

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
        return _check_loopback(value)

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
    def _local_postgres_is_loopback(self) -> Settings:
        """The local runtime's PostgreSQL listens on postgres_host: loopback only, like every local service."""
        if self.runtime is Runtime.LOCAL:
            try:
                _check_loopback(self.postgres_host)
            except ValueError as error:
                raise ValueError(f"{ENV_PREFIX}POSTGRES_HOST (with {ENV_PREFIX}RUNTIME=local): {error} "
                                 f"(got {self.postgres_host!r})") from None
        return self

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
        # the pipeline's jobs share one local Flink cluster (ADR 0013): its REST port is the base
        ports["FLINK_REST_PORT_BASE"] = self.flink_rest_port_base
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
        return self.install_dir / "venvs"

    @property
    def jars_dir(self) -> Path:
        return self.install_dir / "jars"

    @property
    def tools_dir(self) -> Path:
        """uv, kustomize and other pinned tools (scripts/setup.sh, scripts/setup_k8s_tools.sh)."""
        return self.install_dir / "tools"

    @property
    def portal_assets_dir(self) -> Path:
        """The lineage portal's browser libraries (scripts/setup_portal.sh runs `npm ci` there)."""
        return self.install_dir / "portal-assets"

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
        """Where set-up writes the manifest Cosmos renders the DAGs from. Parsed from the repo's dbt
        project by `streamflow prepare` (no database involved), so part of the installation unless
        STREAMFLOW_DBT_ARTIFACTS_DIR says otherwise (the Airflow image bakes it there)."""
        if self.dbt_artifacts_dir:
            return Path(self.dbt_artifacts_dir) / "target"
        return self.install_dir / "dbt" / "target"

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
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:  # a check across settings: its message names the variables itself
            lines.extend(message.split("; "))
            continue
        value: Any = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{ENV_PREFIX}{str(item['loc'][0]).upper()}: {message}{shown}")
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
