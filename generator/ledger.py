"""The ledger: one JSON line per message sent, written when its delivery is known.

It is the ground truth downstream tests reconcile against (nothing lost, nothing duplicated, fraud
labels, malformed kinds), so it records what the sink reported: partition and offset from Kafka's
delivery callback, or the error. Messages still undelivered at shutdown are purged and therefore
reported (as failed) too, so every message sent has exactly one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import NamedTuple


class MessageMeta(NamedTuple):
    sequence: int
    transaction_id: str
    customer_id: str
    malformed_kind: str | None
    fraud_pattern: str | None
    fraud_episode: int | None


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("w", encoding="utf-8", buffering=1 << 20)
        self.rows = 0

    def record(self, meta: MessageMeta, *, partition: int | None, offset: int | None, error: str | None) -> None:
        # Hand-formatted (ids and kinds are plain ASCII identifiers; the error is JSON-escaped): the
        # ledger is written from the delivery callback, once per message, so json.dumps would cost ~2x.
        kind, pattern, episode = meta.malformed_kind, meta.fraud_pattern, meta.fraud_episode
        self._file.write(
            f'{{"sequence":{meta.sequence},"transaction_id":"{meta.transaction_id}",'
            f'"customer_id":"{meta.customer_id}","valid":{"true" if kind is None else "false"},'
            f'"malformed_kind":{_json_str(kind)},"fraud_pattern":{_json_str(pattern)},'
            f'"fraud_episode":{"null" if episode is None else episode},'
            f'"delivered":{"true" if error is None else "false"},'
            f'"partition":{"null" if partition is None else partition},"offset":{"null" if offset is None else offset},'
            f'"error":{"null" if error is None else json.dumps(error)}}}\n'
        )
        self.rows += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _json_str(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def read_ledger(path: Path) -> list[dict[str, object]]:
    """All rows of a ledger file (for tests and reconciliation tools)."""
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
