"""The checks behind :class:`streamflow.settings.Settings`, one function per rule.

Each takes plain values (never the settings object, which imports this module) and raises
``ValueError`` with a message for the person who has to fix the variable; the settings object names
the variable. :func:`explain` turns pydantic's validation error into that message, and
:func:`read_or_create_secret` keeps the generated secrets a setting falls back to (the PostgreSQL password).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamflow.settings_types import ENV_PREFIX, PLATFORM_VARIABLES, SCHEDULE_PRESETS

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def check_cron(expr: str) -> str:
    """Validate a DAG schedule the way Airflow will read it: a preset, or five cron fields that
    croniter (Airflow's own cron library) accepts *and* that fire at some point (``0 0 30 2 *`` parses
    but never runs). Six-field expressions are refused: croniter reads the sixth field as seconds."""
    if expr.startswith("@"):
        if expr not in SCHEDULE_PRESETS:
            close = difflib.get_close_matches(expr, SCHEDULE_PRESETS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown schedule preset: {hint}Airflow knows {', '.join(SCHEDULE_PRESETS)}")
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


def check_loopback(value: str) -> str:
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


def check_topic_name(value: str) -> str:
    if not _TOPIC_RE.match(value):
        raise ValueError(f"{value!r} is not a valid Kafka topic name ([A-Za-z0-9._-], 1-249 chars)")
    return value


def check_http_url(value: str) -> str:
    """Empty (unset) or an http(s) URL, returned without its trailing slash."""
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


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


def check_kubernetes_endpoints(kafka_bootstrap_servers: str, postgres_password: str | None) -> None:
    """On Kubernetes nothing is generated locally: the connections must come from the deployment."""
    missing = [f"{ENV_PREFIX}{name}" for name, value in (
        ("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers),
        ("POSTGRES_PASSWORD", postgres_password),
    ) if not value]
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} must be set when {ENV_PREFIX}RUNTIME=kubernetes (the warehouse "
            "connection and the Kafka bootstrap address come from the deployment: see k8s/helm/airflow-values.yaml)"
        )


def check_distinct_ports(ports: Mapping[str, int]) -> None:
    """``{variable suffix: port}``: no two services of the local stack may share a port."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ValueError(
                f"{ENV_PREFIX}{name} and {ENV_PREFIX}{seen[port]} both use port {port}; give each its own"
            )
        seen[port] = name


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


def explain(error: ValidationError) -> str:
    """pydantic's validation error as one line per problem, each naming its ``STREAMFLOW_*`` variable."""
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
