"""Managed background processes with pid files, so `status` and `down` work after a crash.

Each service process runs in its own session (process group); stopping sends SIGTERM to the whole
group, waits, then SIGKILLs what is left, so `down` leaves no orphan (JVM children, gunicorn workers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamflow.logs import get_log

log = get_log("streamflow.stack")


class ServiceError(RuntimeError):
    """A service failed to start or become ready; the message names its log file."""


@dataclass(frozen=True)
class PidFile:
    path: Path

    def read(self) -> tuple[int, float] | None:
        try:
            data = json.loads(self.path.read_text())
            return int(data["pid"]), float(data["start_ticks"])
        except (OSError, ValueError, KeyError):
            return None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "start_ticks": _start_ticks(pid)}))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def alive_pid(self) -> int | None:
        """The recorded pid if that very process (same start time) is still alive, else None."""
        entry = self.read()
        if entry is None:
            return None
        pid, ticks = entry
        if _start_ticks(pid) == ticks and ticks >= 0:
            return pid
        return None


def _start_ticks(pid: int) -> float:
    """Process start time from /proc: distinguishes our process from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    fields = stat.rsplit(")", 1)[1].split()
    if fields and fields[0] == "Z":  # zombie: exited, not yet reaped
        return -1
    return float(fields[19])


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    pid_file: PidFile,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log_file``; return its pid."""
    reap_orphans(name, pid_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=user,
            close_fds=True,
        )
    pid_file.write(proc.pid)
    return proc.pid


def wait_until(
    name: str,
    check: Callable[[], bool],
    *,
    timeout_s: float,
    log_file: Path,
    pid_file: PidFile | None = None,
    interval_s: float = 0.5,
) -> None:
    """Poll ``check`` until true; fail early if the process died, else after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:
            last = error
            del last
        if pid_file is not None and pid_file.alive_pid() is None:
            raise ServiceError(
                f"{name} exited during start-up; see its log: {log_file}\n{tail(log_file)}"
            )
        time.sleep(interval_s)
    raise ServiceError(f"{name} not ready after {timeout_s:.0f} s; see its log: {log_file}\n{tail(log_file)}")


def stop(name: str, pid_file: PidFile, *, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process group, wait, then SIGKILL; return True if something was running."""
    pid = pid_file.alive_pid()
    if pid is None:
        reaped = reap_orphans(name, pid_file)
        pid_file.remove()
        return reaped
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        log.warning("service did not stop in time, killing", service=name, pid=pid)
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.3)
    pid_file.remove()
    return True


def reap_orphans(name: str, pid_file: PidFile, *, timeout_s: float = 10.0) -> bool:
    """Stop what is left of a service whose main process died (SIGKILL, OOM) but whose children live on.

    Every service runs in its own session, so its process group id is the recorded pid. Children of a
    killed Airflow scheduler (log server, health server, executor workers) keep their ports and would
    make the restarted scheduler fail to bind; a dead Flink TaskManager launcher leaves its JVM. A
    supervisor restarts a service from a clean slate, as Kubernetes does with a pod.
    """
    entry = pid_file.read()
    if entry is None or pid_file.alive_pid() is not None:
        return False
    pgid = entry[0]
    if not group_members(pgid):
        return False
    log.warning("stopping leftovers of a crashed service", service=name, process_group=pgid,
                members=len(group_members(pgid)))
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.2)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.3)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def group_members(pgid: int) -> list[int]:
    """Pids still alive in a process group (used by tests to prove `down` leaves nothing behind)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def tail(path: Path, lines: int = 15) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log yet)"
    return "\n".join("    " + line for line in content[-lines:])
