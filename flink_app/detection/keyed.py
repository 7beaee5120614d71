"""What the fraud detector keeps per customer in Flink, and when it registers the expiry timer.

One keyed value per customer: ``(CustomerState.to_flat(), last_seen_ms, timer_ms)``. Why one value
and not three states: every state access from Python is a call into the JVM (and, with RocksDB, a
serialisation); one read and one write per event is the minimum. Why ``timer_ms``: the expiry timer
sits at the end of the processing-time day after which the customer has been idle for the TTL, so
it only moves when the day changes. Registering it on every event (the earlier code) created the
same timer again and again (Flink keeps one per key and timestamp); now it is registered only
when its timestamp differs from the one already registered. PyFlink cannot set a state TTL in
thread mode (it tries to start a Py4J gateway inside the TaskManager), hence the timer.

Pure functions: the job and the offline evaluation use them, tests check them without Flink.
"""

from __future__ import annotations

import base64

from flink_app.detection.rules import CustomerState, FlatState

DAY_MS = 86_400_000

#: What the ValueState holds: (flat customer state, last event's processing time, registered timer).
Stored = tuple[FlatState, int, int]


def customer_key(customer_id: str) -> str:
    """The stream's key for a customer: ``TO_BASE64`` of the id's UTF-8 bytes, as the job's SQL computes
    it (an ASCII key survives the Java -> Python conversion unchanged; see fraud_detector.KEYED_INPUT_SQL)."""
    return base64.b64encode(customer_id.encode("utf-8")).decode("ascii")


def expiry_timer_ms(now_ms: int, ttl_days: int) -> int:
    """The expiry timer for an event processed at ``now_ms``: end of that day + the TTL."""
    return (now_ms // DAY_MS + 1) * DAY_MS + ttl_days * DAY_MS


def load(stored: Stored | None) -> tuple[CustomerState, int | None]:
    """The customer's state (new if none) and the expiry timer already registered for it."""
    if stored is None:
        return CustomerState(), None
    flat, _last_seen_ms, timer_ms = stored
    return CustomerState.from_flat(flat), timer_ms


def timer_to_register(now_ms: int, registered_ms: int | None, ttl_days: int) -> int | None:
    """The timer to register for an event at ``now_ms``, or None when it is already registered."""
    wanted = expiry_timer_ms(now_ms, ttl_days)
    return None if wanted == registered_ms else wanted


def store(state: CustomerState, now_ms: int, timer_ms: int) -> Stored:
    return state.to_flat(), now_ms, timer_ms


def expired(stored: Stored | None, timer_ms: int, ttl_days: int) -> bool:
    """True when a timer firing at ``timer_ms`` finds the customer idle for at least the TTL."""
    return stored is None or timer_ms - stored[1] >= ttl_days * DAY_MS
