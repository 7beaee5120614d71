"""Evidence that an injected fault really happened: outage probes and Flink's own records.

A fault test that kills nothing (a wrong pid file, a signal to an already-dead process, a service
that restarts before anyone looks) would still reconcile perfectly, so every fault case also proves
its fault: a probe that succeeded before the fault *failed* at least once after it (TCP connect to
Kafka, ``SELECT 1`` on PostgreSQL, the JobManager's REST API, the job's task states), the killed
process group is gone and a new process took its place, and for Flink the job restarted (its
``numRestarts`` rose) or was resubmitted and restored a checkpoint.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from streamflow.flink_health import ACTIVE_STATES
from streamflow.flink_spec import FlinkJobSpec
from streamflow.runtime import flink_local_config, flink_local_rest
from streamflow.settings import Settings


@dataclass
class Sample:
    at: float
    ok: bool
    detail: str = ""


class OutageProbe(threading.Thread):
    """Calls ``check`` every ``interval_s``; an exception is a failed attempt (recorded with its message)."""

    def __init__(self, name: str, check: Callable[[], None], interval_s: float = 0.2) -> None:
        super().__init__(daemon=True, name=f"probe-{name}")
        self.probe_name, self.check, self.interval_s = name, check, interval_s
        self.samples: list[Sample] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.check()
                self.samples.append(Sample(time.monotonic(), True))
            except Exception as error:
                self.samples.append(Sample(time.monotonic(), False, f"{type(error).__name__}: {error}"[:200]))
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def failures_between(self, start: float, end: float = float("inf")) -> list[Sample]:
        return [s for s in list(self.samples) if start <= s.at <= end and not s.ok]

    def successes_between(self, start: float, end: float = float("inf")) -> int:
        return sum(1 for s in list(self.samples) if start <= s.at <= end and s.ok)

    def wait_for_failure(self, since: float, timeout_s: float) -> bool:
        """Block until the probe recorded a failed attempt after ``since`` (the outage was seen)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.failures_between(since):
                return True
            time.sleep(0.05)
        return False

    def summary(self, fault_at: float) -> dict[str, Any]:
        failed = self.failures_between(fault_at)
        return {"probe": self.probe_name, "ok_before_fault": self.successes_between(0, fault_at),
                "failed_after_fault": len(failed), "first_failure": failed[0].detail if failed else None,
                "ok_at_end": bool(self.samples) and self.samples[-1].ok}


# ---- checks -----------------------------------------------------------------------------------
def tcp_check(host: str, port: int) -> Callable[[], None]:
    def check() -> None:
        with socket.create_connection((host, port), timeout=0.5):
            pass

    return check


def sql_check(dsn: str) -> Callable[[], None]:
    def check() -> None:
        with psycopg.connect(dsn, connect_timeout=1) as conn:
            conn.execute("SELECT 1")

    return check


def _get(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def rest_check(spec: FlinkJobSpec, settings: Settings) -> Callable[[], None]:
    """The JobManager answers its REST API (refused while it is dead)."""
    url = f"{flink_local_rest.rest_url(spec, settings)}/overview"

    def check() -> None:
        _get(url, 1.0)

    return check


def job_running_check(spec: FlinkJobSpec, settings: Settings) -> Callable[[], None]:
    """The spec's active job is RUNNING with every task running (fails while it restarts)."""
    url = f"{flink_local_rest.rest_url(spec, settings)}/jobs/overview"

    def check() -> None:
        jobs = [j for j in flink_local_rest.own_jobs(spec, _get(url, 1.0).get("jobs", []))  # the cluster is shared
                if j.get("state") in ACTIVE_STATES]
        if not jobs:
            raise RuntimeError("no active job")
        job = jobs[0]
        tasks = job.get("tasks", {})
        if job.get("state") != "RUNNING" or int(tasks.get("running", 0)) != int(tasks.get("total", -1)):
            raise RuntimeError(f"job {job.get('state')}, tasks {tasks}")

    return check


# ---- Flink's own records -----------------------------------------------------------------------
@dataclass(frozen=True)
class JobRecord:
    """What Flink says about a job: which one, how often it restarted, what it restored."""

    job_id: str | None
    restarts: int | None  # Flink's numRestarts (measured: stays 0 when a TaskManager loss fails over a region)
    restores: int | None  # checkpoint restores (``checkpoints.counts.restored``): rises with every failover
    restored_from: str | None  # external path of the checkpoint the job last restored, if any
    taskmanager_pid: int | None
    jobmanager_pid: int | None


def job_record(spec: FlinkJobSpec, settings: Settings) -> JobRecord:
    paths = flink_local_config.layout(spec, settings)
    base = flink_local_rest.rest_url(spec, settings)
    job_id = restarts = restores = restored = None
    try:
        jobs = [j for j in flink_local_rest.own_jobs(spec, _get(f"{base}/jobs/overview").get("jobs", []))
                if j.get("state") in ACTIVE_STATES]
        if jobs:
            job_id = str(jobs[0]["jid"])
            metrics = _get(f"{base}/jobs/{job_id}/metrics?get=numRestarts")
            restarts = next((int(m["value"]) for m in metrics if m.get("id") == "numRestarts"), None)
            checkpoints = _get(f"{base}/jobs/{job_id}/checkpoints")
            restores = int((checkpoints.get("counts") or {}).get("restored", 0))
            restored = ((checkpoints.get("latest") or {}).get("restored") or {}).get("external_path")
    except (OSError, ValueError):
        pass
    return JobRecord(job_id, restarts, restores, restored, paths.taskmanager_pid.alive_pid(),
                     paths.jobmanager_pid.alive_pid())


def records(specs: dict[str, FlinkJobSpec], settings: Settings) -> dict[str, JobRecord]:
    return {name: job_record(spec, settings) for name, spec in specs.items()}


@dataclass
class Evidence:
    """What a fault case observed; :meth:`problems` lists every way the fault did not really happen."""

    fault_at: float = 0.0
    back_at: float = 0.0
    killed: dict[str, tuple[int, str]] = field(default_factory=dict)  # part -> (pid, start time) killed
    replaced_by: dict[str, int | None] = field(default_factory=dict)  # part -> pid running at the end
    probes: list[OutageProbe] = field(default_factory=list)
    before: dict[str, JobRecord] = field(default_factory=dict)
    after: dict[str, JobRecord] = field(default_factory=dict)
    expect_restart: tuple[str, ...] = ()  # jobs whose numRestarts must have risen
    expect_resubmit: tuple[str, ...] = ()  # jobs that must run under a new id, restored from a checkpoint

    def problems(self) -> list[str]:
        found = []
        for part, (pid, started) in self.killed.items():
            if started and identity(pid) == started:
                found.append(f"{part}: killed pid {pid} is still alive")
            successor = self.replaced_by.get(part)
            if successor is None or successor == pid:
                found.append(f"{part}: no new process replaced pid {pid} (now {successor})")
        for probe in self.probes:
            if probe.successes_between(0, self.fault_at) == 0:
                found.append(f"probe {probe.probe_name} never succeeded before the fault: it proves nothing")
            if not probe.failures_between(self.fault_at):
                found.append(f"probe {probe.probe_name} saw no outage after the fault")
        for job in self.expect_restart:
            old, new = self.before.get(job), self.after.get(job)
            if old is None or new is None or old.job_id != new.job_id or restarts_between(old, new) <= 0:
                found.append(f"{job}: Flink recorded no restart (before {old}, after {new})")
        for job in self.expect_resubmit:
            old, new = self.before.get(job), self.after.get(job)
            if old is None or new is None or new.job_id is None or new.job_id == old.job_id:
                found.append(f"{job}: not resubmitted (before {old}, after {new})")
            elif not new.restored_from:
                found.append(f"{job}: resubmitted job {new.job_id} restored no checkpoint")
        return found

    def summary(self) -> dict[str, Any]:
        return {"killed": {part: pid for part, (pid, _s) in self.killed.items()}, "replaced_by": self.replaced_by,
                "probes": [p.summary(self.fault_at) for p in self.probes],
                "restarts": {j: restarts_between(self.before[j], self.after[j])
                             for j in self.before if j in self.after and self.before[j].job_id == self.after[j].job_id},
                "restored_from": {j: r.restored_from for j, r in self.after.items() if j in self.expect_resubmit}}


def restarts_between(before: JobRecord, after: JobRecord) -> int:
    """How often the same job restarted: Flink's numRestarts, or its checkpoint restores where those
    say more (a TaskManager loss restarts the job from a checkpoint without counting in numRestarts)."""
    return max((after.restarts or 0) - (before.restarts or 0), (after.restores or 0) - (before.restores or 0))


def identity(pid: int | None) -> str:
    """The process's start time (from /proc), so a later process reusing the pid is not mistaken for
    it; "" when no such process is alive."""
    if pid is None:
        return ""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if not fields or fields[0] == "Z" else fields[19]
