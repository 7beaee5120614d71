"""Rate limiting: within +-10% of events_per_second over 5 s (dry-run sink, no Kafka)."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.config import GeneratorConfig
from generator.logs import JsonLog
from generator.ratelimit import UNLIMITED_CHUNK, RateLimiter
from generator.runner import run


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limiter_paces_chunks() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, clock=clock)
    assert limiter.chunk_size() == 20
    assert limiter.delay(0) == 0.0
    assert limiter.delay(20) == pytest.approx(0.02)
    clock.now += 0.5
    assert limiter.delay(20) == 0.0  # behind schedule: send now
    assert limiter.delay(1000) == pytest.approx(0.5)


def test_limiter_does_not_burst_after_a_long_stall() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock)
    limiter.delay(0)
    clock.now += 10.0  # e.g. the broker stalled
    assert limiter.delay(10) == 0.0
    assert limiter.delay(20) == pytest.approx(0.1)  # schedule restarted at the stall, no 1,000-event burst


def test_unlimited() -> None:
    limiter = RateLimiter(0)
    assert limiter.unlimited and limiter.chunk_size() == UNLIMITED_CHUNK and limiter.delay(10**9) == 0.0


@pytest.mark.parametrize("eps", [200, 5000])
def test_achieved_rate_within_10_percent_over_5_seconds(tmp_path: Path, eps: int) -> None:
    out = tmp_path / "events.jsonl"
    config = GeneratorConfig(output=str(out), seed=1, start_time=datetime(2026, 11, 22, tzinfo=UTC),
                             events_per_second=eps, duration_seconds=5.0, log_interval_seconds=1.0)
    logs = io.StringIO()
    began = time.monotonic()
    summary = run(config, log=JsonLog(stream=logs))
    elapsed = time.monotonic() - began
    achieved = summary.sent / 5.0
    assert achieved == pytest.approx(eps, rel=0.10)
    assert 4.9 <= elapsed <= 6.5
    assert sum(1 for _ in out.open()) == summary.sent
    progress = [json.loads(line) for line in logs.getvalue().splitlines() if '"progress"' in line]
    assert len(progress) >= 3
