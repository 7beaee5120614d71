"""Sample streams for the generator's unit tests (imported by conftest.py and the tests; no services)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from generator.encode import Encoder
from generator.model import World
from generator.stream import Batch, TransactionStream

START = datetime(2026, 11, 22, 7, 0, 0, tzinfo=UTC)


@dataclass
class Sample:
    world: World
    batch: Batch
    values: list[str]
    keys: list[bytes]

    @cached_property
    def valid_events(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v, m in zip(self.values, self.batch.malformed.tolist(), strict=True) if not m]


def generate(at_least: int, *, seed: int = 42, customers: int = 1000, stores: int = 100, fraud_rate: float = 0.02,
             malformed_rate: float = 0.0) -> Sample:
    stream = TransactionStream(seed=seed, customers=customers, stores=stores, fraud_rate=fraud_rate,
                               malformed_rate=malformed_rate, start_time=START)
    parts: list[Batch] = []
    total = 0
    for batch in stream.batches():
        parts.append(batch)
        total += len(batch)
        if total >= at_least:
            break
    batch = Batch.concat(parts)  # whole batches: a cut could split the last burst
    encoded = Encoder(stream.world, seed, "EUR").encode(batch, 1)
    return Sample(stream.world, batch, encoded.values, encoded.keys)
