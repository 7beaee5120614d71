"""A crashed service's children are stopped before it is started again (real processes, no services)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from streamflow.stack.process import PidFile, group_members, reap_orphans, spawn, stop


def _wait_for(check, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_leftovers_of_a_killed_leader_are_reaped_on_restart(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "svc.pid")
    # a leader with two children, like the scheduler with its log server and executor workers
    leader = spawn("svc", ["bash", "-c", "sleep 60 & sleep 60 & wait"], pid_file=pid_file, log_file=tmp_path / "log")
    assert _wait_for(lambda: len(group_members(leader)) == 3)
    os.kill(leader, signal.SIGKILL)
    assert _wait_for(lambda: pid_file.alive_pid() is None)
    assert len(group_members(leader)) == 2  # the children live on, as orphans

    new = spawn("svc", ["sleep", "60"], pid_file=pid_file, log_file=tmp_path / "log")
    try:
        assert group_members(leader) == []
        assert pid_file.alive_pid() == new
    finally:
        stop("svc", pid_file)
    assert group_members(new) == []


def test_stop_after_a_crash_still_stops_the_children(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "svc.pid")
    leader = spawn("svc", ["bash", "-c", "sleep 60 & wait"], pid_file=pid_file, log_file=tmp_path / "log")
    assert _wait_for(lambda: len(group_members(leader)) == 2)
    os.kill(leader, signal.SIGKILL)
    assert _wait_for(lambda: pid_file.alive_pid() is None)
    assert stop("svc", pid_file) is True
    assert group_members(leader) == []
    assert reap_orphans("svc", pid_file) is False  # nothing left, nothing to do
