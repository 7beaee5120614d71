"""Reference semantics of the realtime_aggregator's windows, as a pure function.

The job itself is Flink SQL; this function states what it must produce (tumbling event-time
windows per store and overall, a watermark of max event time minus a delay, late events accepted
until window end + allowed lateness) so unit tests and the integration test can compute the
expected rows from a crafted stream instead of hard-coding them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

OVERALL = "__all__"


@dataclass(frozen=True)
class WindowEvent:
    ts: float  # event time, epoch seconds
    store_id: str
    amount: float = 0.0
    is_alert: bool = False  # an alert (counts toward alert_count) rather than a transaction


@dataclass
class WindowResult:
    window_start: float
    window_end: float
    store_id: str
    txn_count: int = 0
    amount_sum: Decimal = Decimal("0.00")
    alert_count: int = 0


def window_start(ts: float, size_s: int) -> float:
    return ts - (ts % size_s)


def aggregate(
    events: Iterable[WindowEvent],
    size_s: int = 60,
    watermark_delay_s: float = 5.0,
    allowed_lateness_s: float = 300.0,
) -> tuple[dict[tuple[float, str], WindowResult], list[WindowEvent]]:
    """Windows keyed (window_start, store_id), and the events dropped as too late (arrival order)."""
    results: dict[tuple[float, str], WindowResult] = {}
    dropped: list[WindowEvent] = []
    watermark = float("-inf")
    for event in events:
        start = window_start(event.ts, size_s)
        if start + size_s + allowed_lateness_s <= watermark:
            dropped.append(event)
            continue
        for store in (event.store_id, OVERALL):
            row = results.setdefault((start, store), WindowResult(start, start + size_s, store))
            if event.is_alert:
                row.alert_count += 1
            else:
                row.txn_count += 1
                row.amount_sum += Decimal(str(event.amount)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        watermark = max(watermark, event.ts - watermark_delay_s)
    return results, dropped
