"""Shared PyFlink set-up: the environments and small helpers every job uses.

Checkpointing (exactly-once, interval), the state backend, the restart strategy and the
thread execution mode are NOT set here: they come from the cluster configuration, i.e. the
FlinkDeployment's ``flinkConfiguration`` (the local runtime writes the same keys), so there is one
place to change them.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment


def environments() -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    env = StreamExecutionEnvironment.get_execution_environment()
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("table.local-time-zone", "UTC")
    return env, t_env


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_log(name: str) -> logging.Logger:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return logging.getLogger(f"flink_app.{name}")
