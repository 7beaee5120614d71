from __future__ import annotations

from decimal import Decimal

from flink_app.windows import OVERALL, WindowEvent, aggregate

T0 = 1_800_000_000.0 - (1_800_000_000.0 % 60)  # a minute boundary


def test_tumbling_windows_per_store_and_overall():
    stream = [
        WindowEvent(T0 + 1, "a", 10.0),
        WindowEvent(T0 + 20, "b", 5.5),
        WindowEvent(T0 + 59.999, "a", 1.25),
        WindowEvent(T0 + 60, "a", 2.0),  # next window
        WindowEvent(T0 + 30, "a", is_alert=True),
    ]
    results, dropped = aggregate(stream)
    assert dropped == []
    assert (results[(T0, "a")].txn_count, results[(T0, "a")].amount_sum) == (2, Decimal("11.25"))
    assert results[(T0, "a")].alert_count == 1
    assert results[(T0, "b")].txn_count == 1
    overall = results[(T0, OVERALL)]
    assert (overall.txn_count, overall.amount_sum, overall.alert_count) == (3, Decimal("16.75"), 1)
    assert results[(T0 + 60, OVERALL)].txn_count == 1
    assert results[(T0, "a")].window_end == T0 + 60


def test_late_events_within_lateness_count_and_beyond_are_dropped():
    stream = [
        WindowEvent(T0 + 10, "a", 1.0),
        WindowEvent(T0 + 400, "a", 1.0),  # watermark -> T0 + 395
        WindowEvent(T0 + 30, "a", 1.0),  # window T0 ends T0+60, +300 lateness = T0+360 <= 395: dropped
        WindowEvent(T0 + 100, "a", 1.0),  # window T0+60 ends T0+120, +300 = T0+420 > 395: kept
    ]
    results, dropped = aggregate(stream, allowed_lateness_s=300)
    assert [e.ts for e in dropped] == [T0 + 30]
    assert results[(T0, "a")].txn_count == 1
    assert results[(T0 + 60, "a")].txn_count == 1
