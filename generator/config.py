"""Every generator option in one typed, frozen object, read from flags and ``GENERATOR_*`` env vars.

The container entrypoint is configured by env vars (the pod template) and the DAG appends flags, so
both must work; a flag always wins over its env var. All parsing and validation lives here so the
rest of the package never reads the environment, and every error names the flag *and* the env var
the user has to fix (the CLI turns :class:`ConfigError` into exit code 2).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TOPIC = "transactions.raw"
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An invalid option; the message names the flag and the env var."""


@dataclass(frozen=True)
class GeneratorConfig:
    """A validated generator run. ``output`` set (a path or ``-`` for stdout) means no Kafka."""

    bootstrap_servers: str | None = None
    topic: str = DEFAULT_TOPIC
    events_per_second: float = 100.0
    total_events: int | None = None
    duration_seconds: float | None = None
    fraud_rate: float = 0.02
    customers: int = 1000
    stores: int = 100
    seed: int = 0
    seed_was_given: bool = True
    malformed_rate: float = 0.0
    ledger: Path | None = None
    output: str | None = None
    start_time: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    backfill: bool = False
    currency: str = "EUR"
    log_interval_seconds: float = 5.0
    flush_timeout_seconds: float = 30.0

    @property
    def uses_kafka(self) -> bool:
        return self.output is None

    @property
    def bounded(self) -> bool:
        return self.total_events is not None or self.duration_seconds is not None


@dataclass(frozen=True)
class _Option:
    dest: str
    flag: str
    env: str
    help: str

    @property
    def names(self) -> str:
        return f"{self.flag} / {self.env}"


_OPTIONS: tuple[_Option, ...] = (
    _Option("bootstrap_servers", "--bootstrap-servers", "GENERATOR_BOOTSTRAP_SERVERS",
            "Kafka bootstrap servers host:port[,host:port] (required unless --output/--dry-run)"),
    _Option("topic", "--topic", "GENERATOR_TOPIC", f"Kafka topic (default {DEFAULT_TOPIC})"),
    _Option("events_per_second", "--events-per-second", "GENERATOR_EVENTS_PER_SECOND",
            "target rate (default 100; 0 = as fast as possible)"),
    _Option("total_events", "--total-events", "GENERATOR_TOTAL_EVENTS", "stop after this many messages"),
    _Option("duration_seconds", "--duration-seconds", "GENERATOR_DURATION_SECONDS",
            "stop after this many wall-clock seconds"),
    _Option("fraud_rate", "--fraud-rate", "GENERATOR_FRAUD_RATE",
            "fraction of events labelled fraud, 0..0.5 (default 0.02)"),
    _Option("customers", "--customers", "GENERATOR_CUSTOMERS", "number of customers (default 1000)"),
    _Option("stores", "--stores", "GENERATOR_STORES", "number of stores, >= 10 (default 100)"),
    _Option("seed", "--seed", "GENERATOR_SEED",
            "random seed; same seed + start time -> byte-identical stream (default: random, logged)"),
    _Option("malformed_rate", "--malformed-rate", "GENERATOR_MALFORMED_RATE",
            "fraction of malformed messages, 0..0.5 (default 0)"),
    _Option("ledger", "--ledger", "GENERATOR_LEDGER", "write a JSON-lines ledger of every message here"),
    _Option("output", "--output", "GENERATOR_OUTPUT", "write JSON lines to this file ('-' = stdout) instead of Kafka"),
    _Option("dry_run", "--dry-run", "GENERATOR_DRY_RUN", "same as --output - (no Kafka)"),
    _Option("start_time", "--start-time", "GENERATOR_START_TIME",
            "event time of the stream start, ISO-8601 (default: now, UTC)"),
    _Option("backfill", "--backfill", "GENERATOR_BACKFILL",
            "with --total-events: start event time early enough that the stream ends about now "
            "(bounded demo runs land in the past, not days in the future)"),
    _Option("currency", "--currency", "GENERATOR_CURRENCY", "ISO 4217 currency code (default EUR)"),
    _Option("log_interval_seconds", "--log-interval-seconds", "GENERATOR_LOG_INTERVAL_SECONDS",
            "seconds between progress log lines (default 5)"),
    _Option("flush_timeout_seconds", "--flush-timeout-seconds", "GENERATOR_FLUSH_TIMEOUT_SECONDS",
            "how long to wait for outstanding deliveries at the end (default 30)"),
)
_BY_DEST = {o.dest: o for o in _OPTIONS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description="Synthetic card transactions (with labelled fraud) to Kafka. "
        "Every flag has a GENERATOR_* env var; the flag wins.",
    )
    for option in _OPTIONS:
        if option.dest in ("dry_run", "backfill"):
            parser.add_argument(option.flag, dest=option.dest, action="store_const", const="true", default=None,
                                help=f"{option.help} [{option.env}]")
        else:
            parser.add_argument(option.flag, dest=option.dest, default=None, metavar="VALUE",
                                help=f"{option.help} [{option.env}]")
    return parser


def _raw(dest: str, args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    value = getattr(args, dest)
    if value is not None:
        return str(value)
    return environ.get(_BY_DEST[dest].env)


def _convert(dest: str, text: str, convert: Callable[[str], T], expected: str) -> T:
    try:
        return convert(text.strip())
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{_BY_DEST[dest].names}: expected {expected}, got {text!r}") from error


def _check(dest: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{_BY_DEST[dest].names}: {message}")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
                 now: Callable[[], datetime] | None = None) -> GeneratorConfig:
    """Flags (``argv``) over env (``environ``) over defaults; raises :class:`ConfigError`.

    argparse itself exits with code 2 on unknown flags; ``now`` is injectable for tests.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    values: dict[str, Any] = {}

    def get(dest: str, convert: Callable[[str], T], expected: str) -> T | None:
        text = _raw(dest, args, env)
        if text is None or (text.strip() == "" and dest not in ("dry_run", "backfill")):
            return None
        return _convert(dest, text, convert, expected)

    bootstrap = get("bootstrap_servers", str, "host:port")
    topic = get("topic", str, "a topic name") or DEFAULT_TOPIC
    _check("topic", bool(_TOPIC_RE.match(topic)), f"{topic!r} is not a valid Kafka topic name ([A-Za-z0-9._-], 1-249)")
    values["topic"] = topic

    eps = get("events_per_second", _finite, "a number >= 0")
    if eps is not None:
        _check("events_per_second", eps >= 0, f"must be >= 0 (0 = as fast as possible), got {eps:g}")
        values["events_per_second"] = eps
    total = get("total_events", int, "an integer >= 1")
    if total is not None:
        _check("total_events", total >= 1, f"must be >= 1, got {total}")
    values["total_events"] = total
    duration = get("duration_seconds", _finite, "a number > 0")
    if duration is not None:
        _check("duration_seconds", duration > 0, f"must be > 0, got {duration:g}")
    values["duration_seconds"] = duration

    for dest in ("fraud_rate", "malformed_rate"):
        rate = get(dest, _finite, "a number between 0 and 0.5")
        if rate is not None:
            _check(dest, 0.0 <= rate <= 0.5, f"must be between 0 and 0.5, got {rate:g}")
            values[dest] = rate
    customers = get("customers", int, "an integer >= 1")
    if customers is not None:
        _check("customers", 1 <= customers <= 1_000_000, f"must be between 1 and 1000000, got {customers}")
        values["customers"] = customers
    stores = get("stores", int, "an integer >= 10")
    if stores is not None:
        _check("stores", 10 <= stores <= 1_000_000,
               f"must be between 10 and 1000000 (every store category needs a store), got {stores}")
        values["stores"] = stores

    seed = get("seed", int, "an integer >= 0")
    if seed is None:
        values["seed"] = secrets.randbelow(2**31)
        values["seed_was_given"] = False
    else:
        _check("seed", 0 <= seed < 2**63, f"must be between 0 and 2^63-1, got {seed}")
        values["seed"] = seed

    ledger = get("ledger", Path, "a file path")
    values["ledger"] = ledger
    output = get("output", str, "a file path or '-'")
    dry_run = get("dry_run", _parse_bool, "true/false/1/0")
    if dry_run and output is None:
        output = "-"
    values["output"] = output
    if output is None:
        _check("bootstrap_servers", bool(bootstrap),
               "is required when producing to Kafka (or use --dry-run / --output PATH)")
    values["bootstrap_servers"] = bootstrap

    start = get("start_time", _parse_time, "an ISO-8601 time such as 2026-11-22T07:00:00Z")
    if start is None:
        start = (now or (lambda: datetime.now(UTC)))()
    values["start_time"] = start.replace(microsecond=start.microsecond // 1000 * 1000)
    backfill = get("backfill", _parse_bool, "true/false/1/0")
    if backfill:
        _check("backfill", total is not None, "needs --total-events (the span is computed from the event count)")
        _check("backfill", get("start_time", _parse_time, "an ISO-8601 time") is None,
               "cannot be combined with --start-time")
        values["backfill"] = True
    currency = get("currency", str, "an ISO 4217 code")
    if currency is not None:
        _check("currency", bool(_CURRENCY_RE.match(currency)), f"must be a 3-letter ISO 4217 code, got {currency!r}")
        values["currency"] = currency
    for dest in ("log_interval_seconds", "flush_timeout_seconds"):
        seconds = get(dest, _finite, "a number > 0")
        if seconds is not None:
            _check(dest, seconds > 0, f"must be > 0, got {seconds:g}")
            values[dest] = seconds
    return GeneratorConfig(**values)
