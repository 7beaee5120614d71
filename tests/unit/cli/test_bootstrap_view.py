"""What `streamflow bootstrap` shows: a live rich table in a terminal, one plain line per state change
elsewhere (log files, CI)."""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamflow.ops import bootstrap_view as view


def ti(task_id: str, state: str | None, start: str | None = None, end: str | None = None, map_index: int = -1,
       try_number: int = 1) -> dict[str, Any]:
    return {"task_id": task_id, "state": state, "start_date": start, "end_date": end, "map_index": map_index,
            "try_number": try_number}


RUN = [
    ti("preflight", "success", "2026-12-02T10:00:00Z", "2026-12-02T10:00:04Z"),
    ti("provision", "success", "2026-12-02T10:00:05Z", "2026-12-02T10:00:12Z"),
    ti("deploy_fraud_detector", "running", "2026-12-02T10:00:13Z"),
    ti("deploy_transaction_processor", "failed", "2026-12-02T10:00:13Z", "2026-12-02T10:02:13Z", try_number=2),
    ti("generate", None),
    ti("dbt_models.stg_transactions", "queued"),
    ti("mapped", "success", "2026-12-02T10:00:13Z", "2026-12-02T10:00:14Z", map_index=3),
]


def test_rows_carry_durations_and_mapped_indexes() -> None:
    rows = {r.key: r for r in view.task_rows(RUN)}
    assert rows["preflight"].duration(0) == 4
    assert rows["deploy_transaction_processor"].duration(0) == 120
    assert rows["generate"].duration(0) is None and rows["generate"].state == "none"
    assert "mapped[3]" in rows
    running = rows["deploy_fraud_detector"]
    assert running.ended is None and running.started is not None
    assert running.duration(running.started + 30) == 30


def test_summary_counts_every_state() -> None:
    text = view.summary(view.task_rows(RUN))
    assert text.startswith("4/7 tasks done")
    assert "1 failed" in text and "1 running" in text and "3 success" in text


@given(st.lists(st.sampled_from(["success", "failed", "running", "queued", "skipped", "up_for_retry", None]),
                max_size=60), st.integers(min_value=1, max_value=30))
def test_visible_rows_keep_what_needs_attention(states: list[str | None], max_rows: int) -> None:
    rows = view.task_rows([ti(f"t{i}", s, "2026-12-02T10:00:00Z" if s else None) for i, s in enumerate(states)])
    shown, hidden = view.visible_rows(rows, max_rows)
    assert len(shown) == min(len(rows), max_rows) or (not rows and not shown)
    assert len(shown) + sum(hidden.values()) == len(rows)
    # no failed or running task is hidden while a less urgent one is shown
    urgent = [r for r in rows if r.state in ("failed", "up_for_retry", "running")]
    if len(urgent) <= max_rows:
        assert all(r in shown for r in urgent)


def test_plain_view_prints_each_change_once_with_the_duration_when_done() -> None:
    out = io.StringIO()
    plain = view.PlainView(out)
    plain.update("running", RUN, 12.0)
    plain.update("running", RUN, 15.0)  # nothing changed: nothing printed
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # preflight, provision, deploy_fraud_detector, deploy_transaction_processor, mapped[3]
    assert any("preflight" in line and "success (4 s)" in line for line in lines)
    assert any("deploy_fraud_detector" in line and line.rstrip().endswith("running") for line in lines)
    assert not any("generate" in line or "stg_transactions" in line for line in lines)


def test_not_a_terminal_means_plain_lines() -> None:
    assert isinstance(view.make_view("bootstrap_pipeline run", io.StringIO()), view.PlainView)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_view_renders_a_table_with_every_task_and_its_duration(monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("LINES", "40")
    out = _Tty()
    live = view.make_view("bootstrap_pipeline manual__1", out)
    assert isinstance(live, view.LiveView)
    with live:
        live.update("running", RUN, 130.0)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    for key in ("preflight", "deploy_transaction_processor", "deploy_fraud_detector", "mapped[3]"):
        assert key in text
    assert "2 min 00 s" in text and "4/7 tasks done" in text and "bootstrap_pipeline manual__1: running" in text
