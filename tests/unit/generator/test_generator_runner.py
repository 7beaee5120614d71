"""The run loop through the dry-run/file sink: determinism, ledger, bounds, shutdown, exit codes."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.cli import EXIT_OK, main
from generator.config import GeneratorConfig
from generator.ledger import read_ledger
from generator.logs import JsonLog
from generator.runner import StopFlag, run

START = "2026-11-22T07:00:00Z"


def _run_cli(tmp_path: Path, name: str, *extra: str) -> tuple[bytes, list[dict[str, object]]]:
    out, ledger = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.ledger.jsonl"
    rc = main(["--output", str(out), "--ledger", str(ledger), "--start-time", START, "--events-per-second", "0",
               *extra], {})
    assert rc == EXIT_OK
    return out.read_bytes(), read_ledger(ledger)


def test_same_seed_gives_a_byte_identical_stream(tmp_path: Path) -> None:
    args = ("--seed", "123", "--total-events", "25000", "--malformed-rate", "0.05")
    first, ledger_a = _run_cli(tmp_path, "a", *args)
    second, ledger_b = _run_cli(tmp_path, "b", *args)
    assert first == second and ledger_a == ledger_b
    other, _ = _run_cli(tmp_path, "c", "--seed", "124", "--total-events", "25000", "--malformed-rate", "0.05")
    assert other != first


def test_a_shorter_run_is_a_prefix_of_a_longer_one(tmp_path: Path) -> None:
    short, _ = _run_cli(tmp_path, "short", "--seed", "5", "--total-events", "12345")
    long, _ = _run_cli(tmp_path, "long", "--seed", "5", "--total-events", "30000")
    assert long.startswith(short) and short.count(b"\n") == 12345


def test_ledger_records_every_message_once(tmp_path: Path) -> None:
    output, ledger = _run_cli(tmp_path, "l", "--seed", "8", "--total-events", "20000", "--malformed-rate", "0.02",
                              "--fraud-rate", "0.05")
    lines = output.decode().splitlines()
    assert len(ledger) == len(lines) == 20000
    ids = [row["transaction_id"] for row in ledger]
    assert len(set(ids)) == 20000 and ids == [f"t-8-{i}" for i in range(1, 20001)]
    for row, line in zip(ledger, lines, strict=True):
        assert row["delivered"] and row["offset"] == int(str(row["sequence"])) - 1 and row["partition"] is None
        if row["malformed_kind"] == "bad_json":
            assert not row["valid"]
            continue
        event = json.loads(line)
        if "transaction_id" in event:
            assert event["transaction_id"] == row["transaction_id"]
        assert row["valid"] == (row["malformed_kind"] is None)
        if row["valid"]:
            assert event["customer_id"] == row["customer_id"]
            assert event["fraud_pattern"] == row["fraud_pattern"]
            assert (row["fraud_episode"] is not None) == event["is_fraud_truth"]
    kinds = {row["malformed_kind"] for row in ledger} - {None}
    assert kinds == {"bad_json", "missing_field", "wrong_type", "negative_amount"}


def _config(tmp_path: Path, **overrides: object) -> GeneratorConfig:
    base = GeneratorConfig(output=str(tmp_path / "out.jsonl"), seed=1,
                           start_time=datetime(2026, 11, 22, tzinfo=UTC), events_per_second=0)
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_summary_counts_and_structured_logs(tmp_path: Path) -> None:
    logs = io.StringIO()
    summary = run(_config(tmp_path, total_events=30000, fraud_rate=0.05, malformed_rate=0.01), log=JsonLog(stream=logs))
    assert summary.ok and summary.sent == summary.delivered == 30000 and summary.stopped_by == "total_events"
    assert 0.04 < sum(summary.fraud.values()) / 30000 < 0.06
    assert sum(summary.malformed.values()) > 0
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["starting", "finished"]
    assert records[-1]["sent"] == 30000 and records[-1]["events_per_s"] > 0 and records[-1]["failed"] == 0


def test_duration_bound_and_progress_logs(tmp_path: Path) -> None:
    logs = io.StringIO()
    summary = run(_config(tmp_path, duration_seconds=1.2, events_per_second=2000, log_interval_seconds=0.5),
                  log=JsonLog(stream=logs))
    assert summary.stopped_by == "duration" and summary.ok
    assert 1800 <= summary.sent <= 2800
    events = [json.loads(line)["event"] for line in logs.getvalue().splitlines()]
    assert events.count("progress") >= 1


def test_stop_flag_ends_an_unbounded_run_and_flushes(tmp_path: Path) -> None:
    stop = StopFlag()
    stop.set("SIGTERM")  # as if the signal arrived before the first chunk
    summary = run(_config(tmp_path), log=JsonLog(stream=io.StringIO()), stop=stop)
    assert summary.stopped_by == "SIGTERM" and summary.sent == 0 and summary.ok


class _FailingSink:
    """Every message fails, as if the broker rejected it."""

    def __init__(self) -> None:
        self.delivered, self.failed = 0, 0
        self.last_error: str | None = None

    def send(self, values, keys, metas) -> None:
        self.failed += len(values)
        self.last_error = "broker said no"

    def wait(self, seconds: float) -> None: ...

    def in_flight(self) -> int:
        return 0

    def finish(self, timeout_s: float) -> None: ...


def test_failed_deliveries_make_the_run_not_ok(tmp_path: Path) -> None:
    logs = io.StringIO()
    summary = run(_config(tmp_path, total_events=100), log=JsonLog(stream=logs), sink=_FailingSink())
    assert not summary.ok and summary.failed == 100
    last = json.loads(logs.getvalue().splitlines()[-1])
    assert last["level"] == "error" and last["last_error"] == "broker said no"


def test_dry_run_writes_json_lines_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dry-run", "--total-events", "10", "--seed", "1", "--start-time", START], {}) == EXIT_OK
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 10 and all(json.loads(line)["schema_version"] == 1 for line in lines)
    assert '"event": "finished"' in captured.err


def test_sigterm_stops_an_unbounded_run_gracefully(tmp_path: Path) -> None:
    """The real entrypoint in a child process: SIGTERM -> stop, flush, summary, exit 0."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "generator", "--output", str(out), "--events-per-second", "2000",
                             "--seed", "1", "--ledger", str(tmp_path / "ledger.jsonl")],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_OK
    finished = json.loads(err.strip().splitlines()[-1])
    assert finished["event"] == "finished" and finished["stopped_by"] == "SIGTERM" and finished["sent"] > 0
    assert len(out.read_text().splitlines()) == finished["sent"] == len(read_ledger(tmp_path / "ledger.jsonl"))


@pytest.mark.parametrize(("seed", "events"), [(42, 50000), (7, 12000)])
def test_backfill_ends_before_the_start_time(tmp_path: Path, seed: int, events: int) -> None:
    """Bounded DAG runs backfill: every event time lies in the past, so none is `future_event_time`
    downstream, and re-runs with the same seed flag the same rows (deterministic validity)."""
    config = _config(tmp_path, seed=seed, total_events=events, backfill=True)
    run(config, log=JsonLog(stream=io.StringIO()))
    times = [datetime.fromisoformat(json.loads(line)["event_time"].replace("Z", "+00:00"))
             for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert max(times) <= config.start_time, max(times) - config.start_time
    assert (config.start_time - min(times)).total_seconds() > 86400  # it really reaches back
