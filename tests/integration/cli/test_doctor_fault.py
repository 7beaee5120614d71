"""`streamflow doctor` on the real local stack finds an injected fault — a Flink job whose cluster
crashed — names the fix, and the fix it names (`streamflow flink restart <job>`) heals the job.

Real PostgreSQL, Kafka and one real Flink job (transaction_processor, deployed through the local
runtime); the CLI runs as a user runs it, `bin/streamflow`, in its own process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from streamflow.flink_spec import spec_for
from streamflow.runtime import flink_local_config, flink_local_lifecycle
from streamflow.runtime.health import job_health
from streamflow.settings import Settings
from streamflow.stack import process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
JOB = "transaction_processor"


def streamflow(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "bin" / "streamflow"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def job_lines(output: str) -> list[str]:
    """The doctor's finding about JOB, with its fix line."""
    lines = output.splitlines()
    at = next((i for i, line in enumerate(lines) if f"flink {JOB} " in line), None)
    assert at is not None, f"the doctor says nothing about {JOB}:\n{output}"
    return lines[at:at + 2]


def wait_healthy(settings: Settings, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    health = job_health(JOB, settings)
    while not health.healthy and time.monotonic() < deadline:
        time.sleep(3)
        health = job_health(JOB, settings)
    assert health.healthy, f"{JOB} not healthy after {timeout_s:.0f} s: {health.reason}"


@pytest.fixture(scope="module")
def one_job(stack: Settings):  # type: ignore[no-untyped-def]
    spec = spec_for(JOB)
    flink_local_lifecycle.deploy(spec, stack)
    wait_healthy(stack)
    yield stack
    flink_local_lifecycle.stop(spec, stack, reset_state=True)


def crash_cluster(settings: Settings) -> None:
    """SIGKILL the job's TaskManager and JobManager process groups, as a crash (OOM kill) would."""
    paths = flink_local_config.layout(spec_for(JOB), settings)
    for pid_file in (paths.taskmanager_pid, paths.jobmanager_pid):
        pid = pid_file.alive_pid()
        assert pid is not None, f"{pid_file.path}: no live process to kill"
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while process.group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def test_doctor_names_a_crashed_job_with_its_fix_and_the_fix_heals_it(one_job: Settings) -> None:
    healthy = streamflow("doctor")
    assert job_lines(healthy.stdout)[0].split()[0] == "ok", healthy.stdout

    crash_cluster(one_job)

    broken = streamflow("doctor")
    finding, fix = job_lines(broken.stdout)
    assert broken.returncode == 1
    assert finding.split()[0] == "FAIL" and "cluster is down" in finding, broken.stdout
    assert f"fix: bin/streamflow flink restart {JOB}" in fix, broken.stdout

    restarted = streamflow("flink", "restart", JOB)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "RUNNING" in restarted.stdout and "resumed from chk-" in restarted.stdout, restarted.stdout
    wait_healthy(one_job)
    after = streamflow("doctor")
    assert job_lines(after.stdout)[0].split()[0] == "ok", after.stdout
