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

from flink_app import events


def environments(jars: tuple[str, ...] = ()) -> tuple[StreamExecutionEnvironment, StreamTableEnvironment]:
    """The job's environments; ``jars`` (file URLs) only where the cluster's lib/ does not hold them, e.g.
    the functions jar on a test's in-process mini cluster.

    Object reuse is on: without it Flink deep-copies every record between chained operators (about a tenth
    of the samples of the aggregator's window thread were such copies, ADR 0012). It is safe for these jobs:
    the SQL runtime is written for it, the JDBC sink copies rows it buffers, the Kafka sinks serialize at
    once, and the Java functions (io.streamflow.flink) keep no reference to an input record - they
    build new rows and keep only values in state."""
    env = StreamExecutionEnvironment.get_execution_environment()
    if jars:
        env.add_jars(*jars)
    env.get_config().enable_object_reuse()
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("table.local-time-zone", "UTC")
    return env, t_env


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_log(name: str) -> logging.Logger:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return logging.getLogger(f"flink_app.{name}")


class EventParsing:
    """The Python check of a job's function: ``events.parse_event`` with the job's schema, byte limit and
    future-skew bound (the validator is built per worker in ``open``). Mixed into the PyFlink functions
    of the three jobs so they all decide alike."""

    def __init__(self, schema_path: str, max_bytes: int, max_future_skew_s: float) -> None:
        self.schema_path = schema_path
        self.max_bytes = max_bytes
        self.max_future_skew_s = max_future_skew_s
        self.validator: events.EventValidator | None = None

    def open(self, context: object) -> None:
        self.validator = events.load_validator(self.schema_path)

    def parse(self, raw: bytes | None) -> events.Transaction | events.Invalid:
        """The event, or why not; never raises (an error of ours becomes ``internal_error``)."""
        try:
            return events.parse_event(bytes(raw) if raw is not None else None, self.validator, self.max_bytes,
                                      max_future_skew_s=self.max_future_skew_s)
        except Exception as error:  # a bug of ours, never the input's fault
            return events.Invalid(events.INTERNAL_ERROR, f"{type(error).__name__}: {error}"[:500])
