"""The fraud detector's keying stage on real Flink: no customer_id can fail the Python operator.

Issue 17: ``{"customer_id": "\\ud800"}`` made ``JSON_VALUE`` return a Java String with an unpaired
surrogate; pemja's conversion of that key into a Python str raised UnicodeDecodeError before
``process_element`` ran, so the detector restarted forever on one message. The class is "a key
Python cannot receive intact" (a leading U+FEFF was silently dropped too). The property: for any
customer_id (any code points, unpaired surrogates, escaped or raw, NUL, BOM, non-BMP), the job's own
SQL (``KEYED_INPUT_SQL``) and Java keyBy (``keyed_by_first_field``) hand every message to a
thread-mode keyed Python operator, the key equals ``keyed.customer_key`` of the id a JSON parser
reads, and the job finishes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from pyflink.table import DataTypes, StreamTableEnvironment

from flink_app.detection import keyed as keyed_state
from flink_app.jobs import fraud_detector

#: No shrinking: each example is a Flink job (~5 s); a failure prints its whole input instead.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
ANY_CHARACTER = st.characters(exclude_categories=())  # includes Cs: lone surrogates
CUSTOMER_IDS = st.one_of(
    st.text(ANY_CHARACTER, min_size=1, max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "\ude00\ud83d", "\ud83d\ude00", "\ufeffC1", "C000123", "\x00", "é", "𝔘"]),
)


class _Echo(KeyedProcessFunction):  # type: ignore[misc]
    """Stands in for ``Score``: what reaches Python is the key and the raw bytes."""

    def process_element(self, value, ctx):  # type: ignore[no-untyped-def]
        yield ctx.get_current_key(), len(bytes(value))


def _encode(customer_id: str, ascii_only: bool) -> bytes:
    """The message as a producer could write it: JSON with the id escaped (``\\ud800``) or as raw UTF-8
    (an unpaired surrogate has no UTF-8 form: it always goes in as the escape)."""
    document = {"customer_id": customer_id, "amount": 1.0}
    if not ascii_only and _decodable(customer_id):
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    return json.dumps(document).encode("ascii")


def _decodable(customer_id: str) -> bool:
    """What Python can receive from Java: a string without unpaired surrogates."""
    try:
        customer_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _run(messages: list[bytes]) -> list[tuple[Any, int]]:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("python.execution-mode", "thread")
    t_env.get_config().set("python.executable", sys.executable)  # the flink venv (pemja, flink_app deps)
    source = t_env.from_elements([(bytearray(m),) for m in messages],
                                 DataTypes.ROW([DataTypes.FIELD("value", DataTypes.BYTES())]))
    t_env.create_temporary_view("source_raw", source)
    keyed = fraud_detector.keyed_by_first_field(t_env, t_env.sql_query(fraud_detector.KEYED_INPUT_SQL))
    out = keyed.process(_Echo(), output_type=Types.TUPLE([Types.STRING(), Types.INT()]))
    with out.execute_and_collect() as results:
        return [(r[0], r[1]) for r in results]


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(st.lists(st.tuples(CUSTOMER_IDS, st.booleans()), min_size=20, max_size=150))
def test_every_key_reaches_python_intact_and_no_key_fails_the_job(cases: list[tuple[str, bool]]) -> None:
    messages = [_encode(customer_id, ascii_only) for customer_id, ascii_only in cases]
    received = sorted(_run(messages))
    assert len(received) == len(messages), "a message with a string customer_id was dropped"
    # the id as any JSON parser reads it ("\\ud83d\\ude00" escaped is one code point, 😀)
    read = [json.loads(message)["customer_id"] for message in messages]
    expected = sorted((keyed_state.customer_key(customer_id), len(message))
                      for customer_id, message in zip(read, messages, strict=True) if _decodable(customer_id))
    assert [r for r in received if r in expected] == expected
