"""Generator throughput to the local Kafka broker (goal >= 100,000 events/s at events_per_second=0).

Runs the real CLI (``python -m generator``, in the generator venv when it exists: what the pod
image installs) as a child process against a throwaway 3-partition topic, and reads its "finished"
summary line: events/s over the run (produce + final flush), and the producer's CPU use (process CPU
seconds / wall seconds, all threads incl. librdkafka's). Also checks rate limiting at 20,000 events/s.
Broker: ``STREAMFLOW_BENCH_KAFKA`` (default 127.0.0.1:59092). Note that the broker shares the
machine's cores with the generator, so figures depend on what else is running.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = 200_000
PARTITIONS = 3


def _python() -> str:
    venv = ROOT / ".streamflow" / "venvs" / "generator" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    name = f"bench.generator.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)
    return name


def _drop(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep a reference until the futures resolve
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result(timeout=30)


def _generate(bootstrap: str, topic: str, *args: str) -> tuple[dict[str, Any], float]:
    """Run the CLI; return its summary record and the child's total CPU seconds (incl. start-up)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [_python(), "-m", "generator", "--bootstrap-servers", bootstrap, "--topic", topic, "--seed", "1", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"generator exited {proc.returncode}: {proc.stderr[-2000:]}")
    summary = next(json.loads(line) for line in reversed(proc.stderr.splitlines()) if '"finished"' in line)
    child_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summary, child_cpu


def run() -> list[dict[str, Any]]:
    bootstrap = os.environ.get("STREAMFLOW_BENCH_KAFKA", "127.0.0.1:59092")
    load = os.getloadavg()[0]
    topic = _topic(bootstrap)
    try:
        fast, child_cpu = _generate(bootstrap, topic, "--events-per-second", "0", "--total-events", str(EVENTS))
        paced, _ = _generate(bootstrap, topic, "--events-per-second", "20000", "--duration-seconds", "5")
        ledger = Path(f"/tmp/generator-bench-ledger-{uuid.uuid4().hex[:8]}.jsonl")
        ledgered, _ = _generate(bootstrap, topic, "--events-per-second", "0", "--total-events", str(EVENTS),
                                "--ledger", str(ledger))
        ledger.unlink(missing_ok=True)
    finally:
        _drop(bootstrap, topic)
    notes = (f"broker {bootstrap}, topic with {PARTITIONS} partitions, lz4, acks=all, idempotent; "
             f"python {_python()}; 1-min load average before the runs {load:.1f} on {os.cpu_count()} cores")
    return [
        {"figure": f"generator events/s (eps=0, {EVENTS // 1000}k events)", "value": fast["events_per_s"],
         "unit": "events/s", "goal": ">= 100000", "notes": notes},
        {"figure": "generator producer CPU during that run (process CPU s / wall s)",
         "value": round(fast["cpu_s"] / fast["elapsed_s"], 2), "unit": "cores", "goal": "<= 1.5",
         "notes": f"cpu {fast['cpu_s']} s over {fast['elapsed_s']} s; whole child incl. start-up {child_cpu:.2f} s"},
        {"figure": "generator CPU per million events", "value": round(fast["cpu_s"] / EVENTS * 1e6, 2),
         "unit": "CPU s", "goal": "<= 10",
         "notes": "1e6 / this = the events/s one uncontended core sustains (the broker needs the other core)"},
        {"figure": "generator achieved rate at --events-per-second 20000 (5 s)",
         "value": round(paced["sent"] / 5.0, 1), "unit": "events/s", "goal": "18000..22000 (+-10%)"},
        {"figure": f"generator events/s with --ledger (eps=0, {EVENTS // 1000}k events)",
         "value": ledgered["events_per_s"], "unit": "events/s", "goal": "informational",
         "notes": "the delivery callback also writes one ledger line per message"},
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
