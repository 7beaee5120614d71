"""When a consumer group has caught up, for every partition state (hypothesis against a simulated reader).

The bug this closes: a group that never committed on a partition with nothing to read (a fresh, empty
topic) was "behind" forever, so a benchmark on a fresh stack waited out its 15-minute timeout.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamflow.consumer_lag import caught_up, next_position

offsets = st.integers(min_value=0, max_value=10_000)


def records_left(committed: int, low: int, high: int) -> int:
    """What a consumer with auto.offset.reset=earliest would still read: from its position to ``high``."""
    start = committed if committed >= low else low  # no commit (-1) or a deleted offset: the earliest record
    return max(0, high - start)


@st.composite
def partitions(draw: st.DrawFn) -> tuple[dict[int, int], dict[int, tuple[int, int]], dict[int, int]]:
    committed: dict[int, int] = {}
    marks: dict[int, tuple[int, int]] = {}
    ends: dict[int, int] = {}
    for p in range(draw(st.integers(1, 4))):
        low = draw(offsets)
        high = low + draw(st.integers(0, 500))
        marks[p], ends[p] = (low, high), high
        if draw(st.booleans()):  # a group commits only the partitions it has read from
            committed[p] = draw(st.integers(0, high))
    return committed, marks, ends


@given(partitions())
def test_caught_up_means_nothing_left_to_read(state: tuple[dict[int, int], dict[int, tuple[int, int]],
                                                           dict[int, int]]) -> None:
    committed, marks, ends = state
    left = sum(records_left(committed.get(p, -1), *marks[p]) for p in ends)
    assert caught_up(committed, marks, ends) is (left == 0)


@given(offsets, st.integers(0, 500))
def test_an_empty_partition_is_caught_up_without_a_commit(low: int, extra: int) -> None:
    assert caught_up({}, {0: (low, low)}, {0: low})
    assert not caught_up({}, {0: (low, low + extra + 1)}, {0: low + extra + 1})  # records, none read


def test_the_next_position_of_a_group_without_a_commit_is_the_earliest_record() -> None:
    assert next_position(-1, 7) == 7 and next_position(12, 7) == 12 and next_position(3, 7) == 7
