"""Job configuration: arguments from the FlinkDeployment's ``job.args``, endpoints from its env.

Arguments carry what the job does (topics, group id, threshold, batching); the container env carries
where things are (Kafka, the warehouse) and the credentials, so the same args run in both runtimes.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    jdbc_url: str
    jdbc_user: str
    jdbc_password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if env is None else env
        missing = [k for k in ("KAFKA_BOOTSTRAP_SERVERS", "WAREHOUSE_JDBC_URL") if not env.get(k)]
        if missing:
            raise SystemExit(
                f"missing env {', '.join(missing)}: set them in the FlinkDeployment podTemplate "
                "(the local runtime fills them from settings)"
            )
        return cls(
            kafka_bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
            jdbc_url=env["WAREHOUSE_JDBC_URL"],
            jdbc_user=env.get("WAREHOUSE_USER", ""),
            jdbc_password=env.get("WAREHOUSE_PASSWORD", ""),
        )


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--source-topic", default="transactions.raw")
    parser.add_argument("--group-id", required=True, help="Kafka consumer group (offsets committed on checkpoint)")
    parser.add_argument("--sink-batch-size", type=int, default=1000, help="JDBC rows buffered before a flush")
    parser.add_argument("--sink-batch-interval", default="1s", help="max time a row waits in the JDBC buffer")
    parser.add_argument(
        "--kafka-delivery",
        choices=("exactly-once", "at-least-once"),
        default="exactly-once",
        help="Kafka sinks: transactional (visible to read_committed consumers at each checkpoint) or not",
    )
    parser.add_argument("--job-name", default=None)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse known args; unknown ones (PythonDriver leftovers) are ignored rather than fatal."""
    args, _unknown = parser.parse_known_args(argv)
    return args
