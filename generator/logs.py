"""Structured logs: one JSON object per line on stderr (stdout may carry the event stream itself).

The generator image installs only confluent-kafka and numpy, so this stays dependency-free rather
than reusing the platform's logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class JsonLog:
    """``log.info("progress", sent=10)`` -> ``{"ts": ..., "level": "info", "event": "progress", "sent": 10}``."""

    def __init__(self, name: str = "generator", stream: TextIO | None = None) -> None:
        self._name = name
        self._stream = stream

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        record = {"ts": _iso_now(), "level": level, "logger": self._name, "event": event, **fields}
        stream = self._stream or sys.stderr
        stream.write(json.dumps(record, default=str) + "\n")
        stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)


class _ToJsonLog(logging.Handler):
    def __init__(self, log: JsonLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = "info"
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warning"
        self._log._emit(level, "librdkafka", {"message": record.getMessage()})


def librdkafka_logger(log: JsonLog) -> logging.Logger:
    """A stdlib logger for confluent-kafka's ``logger`` setting, so librdkafka's own lines are JSON too."""
    logger = logging.getLogger("generator.librdkafka")
    logger.propagate = False
    logger.handlers[:] = [_ToJsonLog(log)]
    logger.setLevel(logging.INFO)
    return logger
