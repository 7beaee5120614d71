"""What `streamflow bootstrap` shows while it follows a DAG run: a live table in a terminal, plain lines
elsewhere.

Why: bootstrap_pipeline runs for minutes; a new user must see which task runs, for how long, and
what already finished — not a silent prompt. In a terminal a ``rich`` live table (task, state, try,
duration) is redrawn in place; in a log file or CI (not a TTY) one line per state change is printed,
so the output stays greppable. Both are fed the same task-instance dicts from Airflow's REST API.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, TextIO

#: States worth a line in the plain view (queued/scheduled churn is left out).
REPORTED_STATES = frozenset({"running", "success", "failed", "upstream_failed", "skipped", "up_for_retry"})
DONE_STATES = frozenset({"success", "failed", "upstream_failed", "skipped", "removed"})
#: Order of rows in the live table: what needs attention first.
STATE_RANK = {"failed": 0, "up_for_retry": 1, "upstream_failed": 2, "running": 3, "deferred": 3, "queued": 4,
              "scheduled": 5, "up_for_reschedule": 5, "success": 6, "skipped": 7, "none": 8}
STATE_STYLE = {"success": "green", "failed": "bold red", "upstream_failed": "red", "running": "cyan",
               "up_for_retry": "yellow", "queued": "dim", "scheduled": "dim", "skipped": "dim", "none": "dim"}


@dataclass(frozen=True)
class TaskRow:
    key: str  # task_id, with [map_index] for mapped tasks
    state: str
    try_number: int
    started: float | None  # epoch seconds
    ended: float | None

    def duration(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started


def _epoch(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def task_rows(task_instances: Sequence[dict[str, Any]]) -> list[TaskRow]:
    rows = []
    for ti in task_instances:
        index = ti.get("map_index", -1)
        key = str(ti["task_id"]) + (f"[{index}]" if isinstance(index, int) and index >= 0 else "")
        rows.append(TaskRow(key, str(ti.get("state") or "none"), int(ti.get("try_number") or 0),
                            _epoch(ti.get("start_date")), _epoch(ti.get("end_date"))))
    return rows


def visible_rows(rows: Sequence[TaskRow], max_rows: int) -> tuple[list[TaskRow], dict[str, int]]:
    """The rows that fit: failures, running and waiting tasks first, then the latest finished ones.
    Returns them in the order they started, with a count per state of the rows left out."""
    ranked = sorted(rows, key=lambda r: (STATE_RANK.get(r.state, 9), -(r.ended or r.started or 0)))
    shown = ranked[:max(1, max_rows)]
    hidden: dict[str, int] = {}
    for r in ranked[len(shown):]:
        hidden[r.state] = hidden.get(r.state, 0) + 1
    shown.sort(key=lambda r: (r.started is None, r.started or 0, r.key))
    return shown, hidden


def summary(rows: Sequence[TaskRow]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    order = sorted(counts, key=lambda s: STATE_RANK.get(s, 9))
    done = sum(counts.get(s, 0) for s in DONE_STATES)
    return f"{done}/{len(rows)} tasks done (" + ", ".join(f"{counts[s]} {s}" for s in order) + ")"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


class RunView(Protocol):
    def update(self, run_state: str, task_instances: Sequence[dict[str, Any]], elapsed: float) -> None: ...

    def __enter__(self) -> RunView: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class PlainView:
    """One line per task state change: ``[  42.0s] deploy_fraud_detector  success (37 s)``."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.seen: dict[str, str] = {}

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def update(self, run_state: str, task_instances: Sequence[dict[str, Any]], elapsed: float) -> None:
        now = time.time()
        for row in task_rows(task_instances):
            if self.seen.get(row.key) != row.state and row.state in REPORTED_STATES:
                self.seen[row.key] = row.state
                took = f" ({fmt_duration(row.duration(now))})" if row.state in DONE_STATES else ""
                print(f"  [{elapsed:6.1f}s] {row.key:<60} {row.state}{took}", file=self.out, flush=True)


class LiveView:
    """A ``rich`` table redrawn in place (terminal only)."""

    def __init__(self, title: str, out: TextIO = sys.stdout) -> None:
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.console = Console(file=out)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.__exit__(kind, value, tb)

    def update(self, run_state: str, task_instances: Sequence[dict[str, Any]], elapsed: float) -> None:
        from rich.table import Table

        now = time.time()
        rows = task_rows(task_instances)
        shown, hidden = visible_rows(rows, max(5, self.console.size.height - 7))
        table = Table(title=f"{self.title}: {run_state}, {fmt_duration(elapsed)}", title_justify="left",
                      caption=summary(rows), caption_justify="left", expand=False)
        table.add_column("task")
        table.add_column("state")
        table.add_column("try", justify="right")
        table.add_column("duration", justify="right")
        for row in shown:
            style = STATE_STYLE.get(row.state, "")
            table.add_row(row.key, f"[{style}]{row.state}[/]" if style else row.state, str(row.try_number or "-"),
                          fmt_duration(row.duration(now)))
        if hidden:
            table.caption = f"{table.caption}; not shown: " + ", ".join(
                f"{n} {state}" for state, n in sorted(hidden.items()))
        self.live.update(table, refresh=True)


def make_view(title: str, out: TextIO = sys.stdout) -> RunView:
    """A live table when ``out`` is a terminal and rich is importable, else plain lines."""
    if out.isatty():
        try:
            return LiveView(title, out)
        except ImportError:
            pass
    return PlainView(out)
