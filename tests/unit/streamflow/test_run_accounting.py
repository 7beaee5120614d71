"""streamflow.run_accounting: this run's range of transactions and where its records ended up (ADR 0010).

Kafka is faked at the confluent_kafka boundary (kafka_fakes.py) and PostgreSQL at ``psycopg.connect``;
tests/integration/runtime/test_job_health.py runs the same accounting on the real stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kafka_fakes import Partition, install

from streamflow import run_accounting
from streamflow.run_accounting import BronzeWaitError, RunAccount, RunRange
from streamflow.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, install_dir=tmp_path)


def _run(**changes: Any) -> RunRange:
    values: dict[str, Any] = {"topic": "transactions.raw", "start": {0: 10, 1: 0}, "end": {0: 20, 1: 5}, "records": 12,
                              "started_at": 1_700_000_000.0, "dlq_topic": "dlq.errors", "dlq_start": {0: 3}}
    return RunRange(**{**values, **changes})


def test_the_range_survives_xcom() -> None:
    run = _run()
    back = RunRange.from_xcom(json.loads(json.dumps(run.to_xcom())))  # XCom is JSON: keys come back as strings
    assert back == run
    assert run.contains(0, 10) and run.contains(0, 19) and run.contains(1, 0)
    assert not run.contains(0, 9) and not run.contains(0, 20) and not run.contains(2, 0)


def test_an_account_is_complete_only_when_every_record_is_somewhere() -> None:
    account = RunAccount(expected=12, bronze={0: 8, 1: 2}, dlq={0: 1}, per_partition_expected={0: 10, 1: 5})
    assert account.accounted == 11 and not account.complete
    assert account.missing_text() == ("partition 0: 1 of 10 missing (8 in bronze, 1 in the DLQ); "
                                      "partition 1: 3 of 5 missing (2 in bronze, 0 in the DLQ)")
    assert RunAccount(12, {0: 9, 1: 2}, {0: 1}, {0: 10, 1: 2}).complete
    assert not RunAccount(0, {}, {}, {}).complete  # a run without records is never "done"


def test_offsets_before_note_both_topics(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    install(monkeypatch, {settings.topic_transactions: {0: Partition(0, 7), 1: Partition(2, 4)},
                          settings.topic_dlq: {0: Partition(0, 3)}})
    before = run_accounting.offsets_before(settings)
    assert before["start"] == {"0": 7, "1": 4} and before["dlq_start"] == {"0": 3}
    assert (before["topic"], before["dlq_topic"]) == (settings.topic_transactions, settings.topic_dlq)


def test_the_range_counts_committed_records_not_offsets(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    # Since the "before" note: partition 0 got records 5..8 and a marker at 9; partition 1 records 0, 1 + marker.
    topic = settings.topic_transactions
    install(monkeypatch, {topic: {0: Partition(0, 10, {o: b"{}" for o in range(9)}),
                                  1: Partition(0, 3, {0: b"{}", 1: b"{}"})}})
    before = {"topic": topic, "start": {"0": 5, "1": 0}, "started_at": 1.0, "dlq_topic": "dlq.errors",
              "dlq_start": {"0": 0}}
    run = run_accounting.measure_run_range(settings, before)
    assert (run.start, run.end, run.records) == ({0: 5, 1: 0}, {0: 10, 1: 3}, 6)


def test_a_generator_that_wrote_nothing_fails_the_range(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    topic = settings.topic_transactions
    install(monkeypatch, {topic: {0: Partition(0, 4, {o: b"{}" for o in range(4)})}})
    before = {"topic": topic, "start": {"0": 4}, "started_at": 1.0, "dlq_topic": "dlq.errors", "dlq_start": {}}
    with pytest.raises(BronzeWaitError, match="the generator wrote no record"):
        run_accounting.measure_run_range(settings, before)


def test_dlq_records_count_only_for_this_runs_offsets(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    def dead_letter(partition: int, offset: int, topic: str = "transactions.raw") -> bytes:
        return json.dumps({"source_topic": topic, "source_partition": partition, "source_offset": offset}).encode()

    install(monkeypatch, {"dlq.errors": {0: Partition(0, 9, {
        2: dead_letter(0, 11),  # before dlq_start: an earlier run's
        3: dead_letter(0, 12), 4: dead_letter(1, 4),  # this run's
        5: dead_letter(0, 25),  # outside the range
        6: dead_letter(0, 13, topic="other"), 7: b"not json", 8: json.dumps({"reason": "x"}).encode(),
    })}})
    assert run_accounting._dlq_offsets(settings, _run()) == {(0, 12), (1, 4)}


class _Connection:
    """psycopg's connection as account_run uses it: the bronze count, then which DLQ pairs bronze also has."""

    def __init__(self, bronze: list[tuple[int, int]], in_bronze: list[tuple[int, int]]) -> None:
        self.results = [bronze, in_bronze]
        self.params: list[Any] = []

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, query: Any, params: Any) -> Any:
        self.params.append(params)
        rows = self.results.pop(0)
        return type("Cursor", (), {"__iter__": lambda _: iter(rows), "fetchall": lambda _: rows})()


def test_an_offset_in_bronze_and_in_the_dlq_counts_once(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    conn = _Connection(bronze=[(0, 7), (1, 5)], in_bronze=[(0, 12)])
    monkeypatch.setattr(run_accounting.psycopg, "connect", lambda *a, **k: conn)
    monkeypatch.setattr(run_accounting, "_dlq_offsets", lambda s, run: {(0, 12), (0, 13), (0, 14)})
    account = run_accounting.account_run(settings, _run())
    assert account.bronze == {0: 7, 1: 5} and account.dlq == {0: 2}
    assert account.per_partition_expected == {0: 10, 1: 5} and account.accounted == 14
    # rows ingested before the run began (minus the clock skew allowance) never count
    assert conn.params[0] == ("transactions.raw", 1_700_000_000.0 - run_accounting.CLOCK_SKEW_S)
    assert sorted(zip(conn.params[1][2], conn.params[1][3], strict=True)) == [(0, 12), (0, 13), (0, 14)]
