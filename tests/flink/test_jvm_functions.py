"""The Java fast path (jvm/flink-functions) does what the Python code it replaces does.

Each Java piece runs for real through its line harness (``io.streamflow.flink.Harness``, one JVM per
test session) on inputs hypothesis draws, and is compared with the Python code:
- the canonical-event reader: Java's regex agrees with Python's on the shape (texts drawn from the
  shape and mutated ones), and every value it reads - ids, the doubles, the epoch seconds, and the
  bronze payload text - equals what ``events.parse_event`` / ``Transaction.payload_json`` give;
- the fraud rules: over interleaved streams of several customers (bursts, tiny amounts, night
  hours, jumps between cities, late events), the alerts from Java's candidates scored by
  :mod:`flink_app.detection.candidates` equal FraudScorer's, field for field, with the real model.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_app import events, jvm_functions, shape_check
from flink_app.detection import candidates
from flink_app.detection import rules as r
from flink_app.detection.scoring import FraudScorer, ScoringConfig, features
from flink_app.model.artifact import load_scorer
from tests.flink.builders import make_event
from tests.flink.test_rules import CATEGORIES, CITIES

ROOT = Path(__file__).resolve().parents[2]
JAVA_SOURCES = ROOT / "jvm" / "flink-functions" / "src" / "main" / "java" / "io" / "streamflow" / "flink"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _flink_home() -> Path:
    spec = importlib.util.find_spec("pyflink")  # located, not imported: these tests need no PyFlink
    assert spec is not None and spec.origin is not None, "PyFlink is not installed in this venv"
    return Path(spec.origin).parent


@pytest.fixture(scope="session")
def functions_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    jar = tmp_path_factory.mktemp("jvm") / jvm_functions.JAR_NAME
    subprocess.run(["bash", str(ROOT / "scripts" / "build_flink_functions.sh"), str(_flink_home()), str(jar)],
                   check=True, capture_output=True, text=True)
    return jar


class Harness:
    """One running ``io.streamflow.flink.Harness``: a line in, its answer out."""

    def __init__(self, jar: Path, *args: str) -> None:
        classpath = f"{jar}:{_flink_home() / 'lib'}/*"
        self.process = subprocess.Popen(["java", "-cp", classpath, "io.streamflow.flink.Harness", *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def ask(self, line: str, until: str | None = None) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answers = []
        while True:
            answer = self.process.stdout.readline()
            assert answer, "the Java harness ended"
            answer = answer.rstrip("\n")
            if until is None:
                return [answer]
            if answer == until:
                return answers
            answers.append(answer)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


MAX_BYTES = 2048


@pytest.fixture(scope="session")
def shape_harness(functions_jar: Path) -> Iterator[Harness]:
    harness = Harness(functions_jar, "shape", base64.b64encode(shape_check.SHAPE.encode()).decode(), str(MAX_BYTES))
    yield harness
    harness.close()


def java_reads(harness: Harness, raw: bytes) -> list[str] | None:
    answer = harness.ask(base64.b64encode(raw).decode())[0]
    return None if answer == "-" else answer.split("\t")


def assert_reads_like_python(values: list[str], raw: bytes) -> None:
    txn = events.parse_event(raw, events.load_validator(), max_future_skew_s=None)
    assert isinstance(txn, events.Transaction)
    (transaction_id, customer_id, card_id, store_id, category, amount, channel, event_time, event_ts, lat, lon,
     payload) = values
    assert (transaction_id, customer_id, card_id, store_id, category, channel, event_time) == (
        txn.transaction_id, txn.customer_id, txn.card_id, txn.store_id, txn.store_category, txn.channel,
        txn.event_time)
    # Java's Double.toString parses back to the very double it printed: equality here is bit equality
    assert (float(amount), float(event_ts), float(lat), float(lon)) == (txn.amount, txn.event_ts, txn.lat, txn.lon)
    assert payload == txn.payload_json()  # bronze gets the same text whichever path took the event


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(shape_check.SHAPE, fullmatch=True))
def test_java_reads_every_text_of_the_shape_as_python_does(shape_harness: Harness, text: str) -> None:
    values = java_reads(shape_harness, text.encode())
    assert values is not None, text
    assert_reads_like_python(values, text.encode())


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(shape_check.SHAPE, fullmatch=True), st.integers(min_value=0), st.sampled_from(
    ['"', "\\", "\x00", "\n", "}", ",", "0", "9", "a", "-", ".", "\ud800", "é", "\u00a0", "\u0660"]))
def test_java_and_python_agree_on_mutated_texts(shape_harness: Harness, text: str, where: int,
                                                insert: str) -> None:
    """One character inserted anywhere (incl. non-ASCII digits Python's ``[0-9]`` would never take):
    Java takes the text exactly when Python's shape does, and then reads it as Python."""
    position = where % (len(text) + 1)
    mutated = text[:position] + insert + text[position:]
    raw = mutated.encode("utf-8", "surrogatepass")
    values = java_reads(shape_harness, raw)
    assert (values is not None) == shape_check.has_shape(mutated), mutated
    if values is not None:
        assert_reads_like_python(values, raw)


def test_java_leaves_events_over_the_byte_limit_and_non_events_to_python(shape_harness: Harness) -> None:
    event = (json.dumps(make_event(1, amount=0), separators=(",", ":"))
             .replace('"amount":0', '"amount":12.50').replace("48.137,", "48.13700,").replace("11.575,", "11.57500,"))
    assert shape_check.has_shape(event)
    assert java_reads(shape_harness, event.encode()) is not None
    padded = event.replace('"t-1"', '"' + "t" * 64 + '"')
    for raw in (b"", b"{}", b"null", event.encode()[:-1], event.encode() + b" ", event.encode("utf-16")):
        assert java_reads(shape_harness, raw) is None, raw
    assert len(padded.encode()) <= MAX_BYTES and java_reads(shape_harness, padded.encode()) is not None
    assert java_reads(shape_harness, padded.encode() + b" " * MAX_BYTES) is None


# ---- the fraud rules -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def scorer() -> FraudScorer:
    return load_scorer()


@pytest.fixture(scope="session")
def rules_harness(functions_jar: Path, scorer: FraudScorer) -> Iterator[Harness]:
    values = jvm_functions.rule_config_values(scorer.rules)
    harness = Harness(functions_jar, "rules", ",".join(repr(v) for v in values))
    yield harness
    harness.close()


#: Customers, some with ids only the Python parse takes (the candidate row must carry them intact).
CUSTOMERS = ("c-0", "\ufeffc-1", "kunde-ü", "客户-3")

step = st.tuples(
    st.integers(0, len(CUSTOMERS) - 1),  # which customer
    # ms since the previous event: bursts, the rules' window edges (60 s, 600 s, 900 s), hours, late events
    st.one_of(st.integers(0, 70_000), st.sampled_from([59_999, 60_000, 60_001, 600_000, 900_000]),
              st.integers(0, 4_000_000), st.integers(-1_800_000, 0)),
    st.one_of(st.floats(0.01, 1.99), st.floats(5, 80), st.floats(400, 50_000)).map(lambda a: round(a, 2)),
    st.sampled_from(CATEGORIES),
    st.one_of(st.sampled_from(CITIES), st.tuples(st.floats(-89, 89), st.floats(-179, 179))),
)


def _transactions(steps: list[tuple[int, int, float, str, tuple[float, float]]], start_hour: int,
                  ) -> list[events.Transaction]:
    out, ms = [], start_hour * 3_600_000
    for i, (customer, delta_ms, amount, category, (lat, lon)) in enumerate(steps):
        ms += delta_ms
        store = f"s-{i % 5}" if i % 3 else "\ufeffs-ü"
        raw = json.dumps(make_event(i, seconds=ms / 1000, customer_id=CUSTOMERS[customer], amount=amount,
                                    store_id=store, store_category=category, lat=lat, lon=lon)).encode()
        txn = events.parse_event(raw, events.load_validator(), max_future_skew_s=None)
        assert isinstance(txn, events.Transaction), txn
        out.append(txn)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=80), st.integers(0, 23))
def test_java_rules_raise_the_alerts_fraud_scorer_raises(rules_harness: Harness, scorer: FraudScorer,
                                                         steps, start_hour: int) -> None:
    assert candidates.rules_decide_alerts(scorer.scoring)
    states: dict[str, r.CustomerState] = {}
    assert rules_harness.ask("reset", until=".") == []
    vectors: dict[str, list[float]] = {}  # what FraudScorer's model saw for each transaction
    for txn in _transactions(steps, start_hour):
        state = states.setdefault(txn.customer_id, r.CustomerState())
        vectors[txn.transaction_id] = features(state, txn)
        expected = scorer.process(state, txn)
        line = "\t".join([txn.customer_id, txn.transaction_id, txn.store_id, txn.store_category,
                          repr(txn.amount), txn.event_time, repr(txn.event_ts), repr(txn.lat), repr(txn.lon)])
        rows = [_typed(answer.split("\t")) for answer in rules_harness.ask(line, until=".")]
        for row in rows:  # the state Java reports equals Python's, to the bit, for every alert
            assert candidates.feature_vector_of(row) == vectors[candidates.text(str(row[0]))]
        got = [candidates.alert_from_candidate(row, scorer) for row in rows]
        assert [a.as_dict() for a in got] == [a.as_dict() for a in expected]


def _typed(values: list[str]) -> list[object]:
    kinds = (str, str, str, float, str, float, float, float, str, _bool, int, float, float, _bool, float, float,
             float, int, int, _bool)
    return [kind(value) for kind, value in zip(kinds, values, strict=True)]


def _bool(text: str) -> bool:
    assert text in ("true", "false"), text
    return text == "true"


def test_the_rules_decide_alerts_only_where_no_alert_depends_on_the_model() -> None:
    assert candidates.rules_decide_alerts(ScoringConfig())
    assert not candidates.rules_decide_alerts(ScoringConfig(threshold=0.8))  # unusual_hour alone is 0.75
    assert not candidates.rules_decide_alerts(ScoringConfig(model_weight=0.9))  # the model could alert alone


def _java_array(source: str, name: str) -> list[str]:
    match = re.search(rf"{name}\s*=\s*\{{(.*?)\}};", (JAVA_SOURCES / source).read_text(), re.DOTALL)
    assert match, name
    return re.findall(r'"([^"]+)"', match.group(1))


def test_python_and_java_agree_on_the_layouts() -> None:
    assert _java_array("FraudRulesFunction.java", "CANDIDATE_FIELDS") == list(candidates.CANDIDATE_FIELDS)
    python_fields = [f.name for f in fields(r.RuleConfig)]
    java_fields = _java_array("RuleConfig.java", "FIELDS")
    assert python_fields == [*java_fields[:10], "unusual_hours", *java_fields[12:]]
    assert len(jvm_functions.rule_config_values(r.RuleConfig())) == len(java_fields)
    assert _java_array("CanonicalEvent.java", "FIELDS") == list(shape_check.FIELDS)
