"""Job configuration: arguments from the FlinkDeployment's ``job.args``, endpoints from its env.

Arguments carry what the job does (topics, group id, threshold, batching); the container env carries
where things are (Kafka, the warehouse) and the credentials, so the same args run in both runtimes.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


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
    parser.add_argument("--sink-batch-interval", type=flink_duration, default="1s",
                        help="max time a row waits in the JDBC buffer")
    parser.add_argument(
        "--kafka-delivery",
        choices=("exactly-once", "at-least-once"),
        default="exactly-once",
        help="Kafka sinks: transactional (visible to read_committed consumers at each checkpoint) or not",
    )
    parser.add_argument(
        "--max-future-skew-seconds",
        type=float,
        default=300.0,
        help="events whose event_time is further ahead of the wall clock go to the DLQ (future_event_time)",
    )
    parser.add_argument("--job-name", default=None)
    return parser


_DURATION_UNITS = {  # Flink's TimeUtils.parseDuration labels (singular and plural); no unit = milliseconds
    *("d", "day", "days", "h", "hour", "hours", "min", "m", "minute", "minutes", "s", "sec", "secs", "second",
      "seconds", "ms", "milli", "millis", "millisecond", "milliseconds", "µs", "us", "micro", "micros",
      "microsecond", "microseconds", "ns", "nano", "nanos", "nanosecond", "nanoseconds"),
}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([a-zµ]*)\s*$")


def flink_duration(value: str) -> str:
    """A duration Flink accepts in connector options (``1s``, ``500 ms``, ``2min``), checked here so a
    typo fails when the job starts, naming the argument, not when the sink is first built."""
    match = _DURATION_RE.match(value)
    if not match or (match.group(2) and match.group(2) not in _DURATION_UNITS):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Flink duration (e.g. 500ms, 1s, 2min)")
    return value


def _non_negative(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``int``/``float`` that refuses negative, NaN and infinite values (sizes, delays, thresholds)."""

    def check(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {convert.__name__}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text!r})")
        return value

    check.__name__ = convert.__name__
    setattr(check, "_strict", True)  # noqa: B010 - marks an already wrapped type
    return check


def _option_names(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def _repeated(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """Options given more than once (the last would silently win): a merge or patch mistake in a spec."""
    options = _option_names(parser)
    seen: dict[str, str] = {}
    repeated = []
    for word in argv:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        action = options.get(name)
        if action is None or isinstance(action, (argparse._AppendAction, argparse._CountAction)):
            continue
        if action.dest in seen:
            repeated.append(f"{seen[action.dest]} / {name}" if seen[action.dest] != name else name)
        seen[action.dest] = name
    return repeated


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the job's arguments strictly; any problem exits (status 2) with a message naming the argument.

    Nothing but the spec's ``job.args`` after the module reaches the job: Flink's PythonDriver consumes
    its own options (``-py``/``-pym``, ``-pyclientexec``, ``-pyexec``, ``-pyfs``, ``-pyreq``, ``-pyarch``,
    ``-pypath``) and starts ``python -m <module>`` with the rest (flink-python 1.20's
    PythonDriverOptionsParserFactory; ``flink run`` locally goes through the same driver). So an unknown
    argument is a typo or a misplaced driver option, and is refused with the closest valid name.
    Also refused: abbreviations (``--sink-batch`` for ``--sink-batch-size``), an option given twice, and a
    negative, NaN or infinite value for any ``int``/``float`` argument.
    """
    parser.allow_abbrev = False
    for action in parser._actions:
        if action.type in (int, float) and not getattr(action.type, "_strict", False):
            action.type = _non_negative(action.type)  # type: ignore[arg-type]
    tokens = list(sys.argv[1:] if argv is None else argv)
    repeated = _repeated(parser, tokens)
    if repeated:
        parser.error(f"given more than once: {', '.join(repeated)}")
    args, unknown = parser.parse_known_args(tokens)
    if unknown:
        hints = []
        for token in unknown:
            close = difflib.get_close_matches(token.split("=", 1)[0], list(_option_names(parser)), n=1)
            hints.append(f"{token} (did you mean {close[0]}?)" if close else token)
        parser.error(f"unrecognized arguments: {', '.join(hints)}")
    return args
