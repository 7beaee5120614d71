"""Fixtures for the pure flink_app tests (flink venv: no pyflink import, no services).

Run: .streamflow/venvs/flink/bin/python -m pytest tests/flink -q -p no:cacheprovider --confcutdir=tests/flink
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flink_app import events
from flink_app.events import Transaction
from tests.flink.builders import make_event


@pytest.fixture(scope="session")
def validator():  # type: ignore[no-untyped-def]
    return events.load_validator()


@pytest.fixture()
def txn(validator):  # type: ignore[no-untyped-def]
    """Build a valid Transaction through the real parser (so tests use the job's code path)."""

    def build(i: int = 0, **kw: Any) -> Transaction:
        result = events.parse_event(json.dumps(make_event(i, **kw)).encode(), validator)
        assert isinstance(result, Transaction), result
        return result

    return build
