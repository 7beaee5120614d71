"""Structured logging: one line per event, ``key=value`` pairs, readable by people and by grep.

Every message says what happened; failures also say what to do next (``hint=...``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_CONFIGURED = False


def _fmt(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [self.formatTime(record, "%H:%M:%S"), record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={_fmt(v)}" for k, v in fields.items()]
        return " ".join(parts)


class Log:
    """A thin wrapper: ``log.info("kafka ready", port=59092)``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        self._logger.log(level, event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def get_log(name: str) -> Log:
    configure()
    return Log(name)


def configure(level: int = logging.INFO) -> None:
    """Install the key=value formatter on stderr once (Airflow tasks keep their own handlers)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    _CONFIGURED = True
    root = logging.getLogger("streamflow")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_KeyValueFormatter())
        root.addHandler(handler)
        root.setLevel(level)
        root.propagate = False
