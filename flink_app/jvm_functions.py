"""The jobs' Java functions (jvm/flink-functions, io.streamflow.flink) from PyFlink: the fast path.

Why: 10,000 events/s on 2 cores is 200 us of CPU per event for everything, and one JVM->Python call
plus Python's parse costs about that alone (ADR 0012). An event of the canonical shape
(:mod:`flink_app.shape_check`, proven sound against :func:`flink_app.events.parse_event`) is read in
Java; every other record still goes to the Python check, which decides it with the full rules and
writes the DLQ reasons, so nothing about what is accepted or refused changes. The fraud detector's
rules run in Java too (:class:`io.streamflow.flink.FraudRules`), Python only scores the alerts with
the model. tests/flink/test_jvm_functions.py holds each Java piece to the Python code it mirrors.

The jar is built by ``scripts/build_flink_functions.sh`` (``make setup``; the Flink image builds it
too) and sits in the cluster's ``lib/``: the job client and the TaskManagers load it parent-first.
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

from flink_app import shape_check
from flink_app.detection.rules import RuleConfig

JAR_NAME = "streamflow-flink-functions.jar"
PACKAGE = "io.streamflow.flink"
#: SQL names of the aggregator's functions (registered by :func:`register_sql_functions`).
CANONICAL_TRANSACTION = "canonical_transaction"
IS_CANONICAL = "is_canonical"
CANONICAL_EVENT_TIME = "canonical_event_time"


def rule_config_values(cfg: RuleConfig) -> list[float]:
    """``cfg`` as the numbers io.streamflow.flink.RuleConfig reads (its ``FIELDS`` order: the dataclass's
    fields with ``unusual_hours`` as start and end)."""
    values: list[float] = []
    for value in astuple(cfg):
        if isinstance(value, tuple):
            values.extend(float(v) for v in value)
        else:
            values.append(float(value))
    return values


def sql_literal(text: str) -> str:
    """``text`` as a Flink SQL string literal (a quote doubled; a backslash is no escape there)."""
    return "'" + text.replace("'", "''") + "'"


def _streams() -> Any:
    from pyflink.java_gateway import get_gateway

    return get_gateway().jvm.io.streamflow.flink.Streams


def split_canonical(raw: Any, output: str, output_type: Any, max_bytes: int,
                    max_future_skew_s: float) -> tuple[Any, Any]:
    """(typed rows of the canonical events, the other records unchanged) from ``raw`` (a PyFlink
    DataStream whose first field is the record's value). ``output``: ``BRONZE`` (raw has value, topic,
    partition, offset; rows as events.bronze_row) or ``TRANSACTION`` (the detector's typed row)."""
    from pyflink.datastream import DataStream

    streams = _streams()
    routed = streams.canonical(raw._j_data_stream, shape_check.SHAPE, max_bytes, float(max_future_skew_s), output,
                               output_type.get_java_type_info())
    return DataStream(routed), DataStream(streams.notCanonical(routed, raw._j_data_stream))


def fraud_rules(transactions: Any, cfg: RuleConfig, state_ttl_days: int, candidate_type: Any) -> Any:
    """``transactions`` (the detector's typed rows) keyed by customer in Java and judged by the rules;
    a stream of alert candidates (flink_app.detection.candidates)."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    values = rule_config_values(cfg)
    array = gateway.new_array(gateway.jvm.double, len(values))
    for i, value in enumerate(values):
        array[i] = value
    return DataStream(_streams().fraudRules(transactions._j_data_stream, array, state_ttl_days,
                                            candidate_type.get_java_type_info()))


def upserts(changelog: Any) -> Any:
    """``changelog`` (a PyFlink DataStream of an updating table) without its UPDATE_BEFORE rows, in Java."""
    from pyflink.datastream import DataStream

    return DataStream(_streams().upserts(changelog._j_data_stream))


def register_sql_functions(t_env: Any) -> None:
    """``canonical_transaction(value, shape, max_bytes, skew)``, ``is_canonical(value, shape, max_bytes)`` and
    ``canonical_event_time(value, shape, max_bytes)`` (they share one parse per record: CanonicalEvent.parseCached)."""
    t_env.create_java_temporary_function(CANONICAL_TRANSACTION, f"{PACKAGE}.CanonicalTransactions")
    t_env.create_java_temporary_function(IS_CANONICAL, f"{PACKAGE}.IsCanonical")
    t_env.create_java_temporary_function(CANONICAL_EVENT_TIME, f"{PACKAGE}.CanonicalEventTime")
