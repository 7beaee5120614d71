"""The fault evidence itself can fail: a fault that did not happen is reported, never passed.

No services: the probes run against in-process checks, the "killed" process is this one (alive) or a
child that really exited. These run in seconds and guard the guard of every fault case.
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.integration.faults.probes import Evidence, JobRecord, OutageProbe, identity


def _probe(outage: bool) -> tuple[OutageProbe, float]:
    """A probe that succeeds, then (if ``outage``) fails from the returned fault time on."""
    state = {"down": False}

    def check() -> None:
        if state["down"]:
            raise ConnectionRefusedError("refused")

    probe = OutageProbe("fake", check, interval_s=0.01)
    probe.start()
    time.sleep(0.1)
    fault_at = time.monotonic()
    state["down"] = outage
    time.sleep(0.1)
    probe.stop()
    return probe, fault_at


def _dead_child() -> tuple[int, str]:
    child = subprocess.Popen(["sleep", "30"])
    pid, started = child.pid, identity(child.pid)
    child.kill()
    child.wait()
    return pid, started


def _record(job_id: str, restarts: int, restored: str | None = None, restores: int = 0) -> JobRecord:
    return JobRecord(job_id, restarts, restores, restored, None, None)


def test_a_real_outage_with_a_replaced_process_is_accepted() -> None:
    probe, fault_at = _probe(outage=True)
    evidence = Evidence(fault_at=fault_at, killed={"svc": _dead_child()}, replaced_by={"svc": os.getpid()},
                        probes=[probe])
    assert evidence.problems() == []


def test_a_probe_that_never_failed_means_no_fault() -> None:
    probe, fault_at = _probe(outage=False)
    evidence = Evidence(fault_at=fault_at, probes=[probe])
    assert evidence.problems() == ["probe fake saw no outage after the fault"]


def test_a_probe_that_never_succeeded_proves_nothing() -> None:
    probe = OutageProbe("down", lambda: (_ for _ in ()).throw(OSError("refused")), interval_s=0.01)
    probe.start()
    time.sleep(0.1)
    probe.stop()
    evidence = Evidence(fault_at=0.0, probes=[probe])
    assert any("never succeeded" in p for p in evidence.problems())


def test_a_surviving_or_unreplaced_process_is_reported() -> None:
    me = os.getpid()
    alive = Evidence(killed={"svc": (me, identity(me))}, replaced_by={"svc": me})
    assert any("still alive" in p for p in alive.problems())
    assert any("no new process" in p for p in alive.problems())
    not_restarted = Evidence(killed={"svc": _dead_child()}, replaced_by={"svc": None})
    assert any("no new process" in p for p in not_restarted.problems())


def test_flink_must_record_the_restart_or_the_restore() -> None:
    same = Evidence(before={"job": _record("a", 0)}, after={"job": _record("a", 0)}, expect_restart=("job",))
    assert any("no restart" in p for p in same.problems())
    risen = Evidence(before={"job": _record("a", 0)}, after={"job": _record("a", 1)}, expect_restart=("job",))
    assert risen.problems() == []
    # a TaskManager loss: numRestarts stays 0 (measured), the job restored a checkpoint once more
    restored_again = Evidence(before={"job": _record("a", 0)}, after={"job": _record("a", 0, "file:/chk-9", 1)},
                              expect_restart=("job",))
    assert restored_again.problems() == []
    other_job = Evidence(before={"job": _record("a", 0)}, after={"job": _record("b", 3, "file:/chk-9", 1)},
                         expect_restart=("job",))
    assert any("no restart" in p for p in other_job.problems())
    fresh = Evidence(before={"job": _record("a", 0)}, after={"job": _record("b", 0)}, expect_resubmit=("job",))
    assert any("restored no checkpoint" in p for p in fresh.problems())
    kept = Evidence(before={"job": _record("a", 0)}, after={"job": _record("a", 0, "file:/chk-3")},
                    expect_resubmit=("job",))
    assert any("not resubmitted" in p for p in kept.problems())
    restored = Evidence(before={"job": _record("a", 0)}, after={"job": _record("b", 0, "file:/chk-3")},
                        expect_resubmit=("job",))
    assert restored.problems() == []
