"""flink_app.shape_check.SHAPE is sound (every text it matches is a valid event) and covers the generator.

Soundness is the property that lets a job skip the Python check for a matching event: hypothesis draws
texts *from the expression itself* (``st.from_regex``) - every id, amount, coordinate, time and enum
combination it can express - and ``events.parse_event`` must accept each one. Coverage is what makes the
fast path worth having: every valid event the real generator writes (all five fraud patterns) matches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_app import events, shape_check
from generator.encode import Encoder
from generator.stream import TransactionStream

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(shape_check.SHAPE, fullmatch=True))
def test_every_text_of_the_shape_is_a_valid_event(text: str) -> None:
    assert shape_check.has_shape(text)
    result = events.parse_event(text.encode(), events.load_validator(), max_future_skew_s=None)
    assert isinstance(result, events.Transaction), (text, result)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(shape_check.SHAPE, fullmatch=True), st.integers(min_value=0), st.sampled_from(
    ['"', "\\", "\x00", "\n", "}", ",", "0", "a", "\ud800", "é"]))
def test_a_mutated_text_is_refused_or_still_valid(text: str, where: int, insert: str) -> None:
    """One character inserted anywhere: the shape either refuses the text or it is still a valid event."""
    position = where % (len(text) + 1)
    mutated = text[:position] + insert + text[position:]
    if shape_check.has_shape(mutated):
        raw = mutated.encode("utf-8", "surrogatepass")
        assert isinstance(events.parse_event(raw, events.load_validator(), max_future_skew_s=None),
                          events.Transaction), mutated


@pytest.mark.parametrize("seed", [1, 42, 2026])
def test_every_event_the_generator_writes_has_the_shape(seed: int) -> None:
    stream = TransactionStream(seed=seed, customers=300, stores=40, fraud_rate=0.2, malformed_rate=0.0,
                               start_time=datetime(2026, 3, 1, tzinfo=UTC))
    encoder = Encoder(stream.world, seed, "EUR")
    texts: list[str] = []
    for batch in stream.batches():
        texts += encoder.encode(batch, len(texts) + 1).values
        if len(texts) >= 20_000:
            break
    patterns = {json.loads(t)["fraud_pattern"] for t in texts}
    assert patterns == {None, *shape_check.PATTERNS}  # every pattern was exercised
    missed = [t for t in texts if not shape_check.has_shape(t)]
    assert missed == []


def test_the_shape_follows_the_schema() -> None:
    """A field added, removed or renamed in the contract, or a new enum value, must change the shape."""
    schema = json.loads(events.schema_path().read_text())
    assert list(shape_check.FIELDS) == schema["required"] == list(schema["properties"])
    props = schema["properties"]
    assert set(shape_check.CATEGORIES) == set(props["store_category"]["enum"])
    assert set(shape_check.CHANNELS) == set(props["channel"]["enum"])
    assert set(shape_check.PATTERNS) == set(props["fraud_pattern"]["enum"]) - {None}
    assert props["schema_version"]["const"] == 1
