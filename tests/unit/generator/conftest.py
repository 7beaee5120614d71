"""Session-wide samples for the generator's unit tests: generated once, no services."""

from __future__ import annotations

import pytest
from generator_samples import Sample, generate


@pytest.fixture(scope="session")
def fraud_sample() -> Sample:
    """80k events at 5% fraud: every pattern appears hundreds of times."""
    return generate(80_000, seed=7, fraud_rate=0.05)


@pytest.fixture(scope="session")
def malformed_sample() -> Sample:
    return generate(40_000, seed=11, fraud_rate=0.05, malformed_rate=0.1)
