"""Fault tolerance figures: runs the fault tests (tests/integration/faults) on the real local stack
and reports, per fault, the events streamed, lost, duplicated, DLQ misses and the recovery time.

The tests themselves assert 0 lost / 0 duplicated; this benchmark only collects their figures
(``test-output/reliability.json``) into bench/BENCHMARKS.md. Sizes: STREAMFLOW_FAULT_EVENTS and
STREAMFLOW_FAULT_RATE (see the test module). STREAMFLOW_BENCH_TEST_OUTPUT=<dir> reads the figures a
`make test` run already wrote there (its test-output/) instead of running the tests again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamflow.settings import load_settings

ROOT = load_settings().repo_root


def run() -> list[dict[str, Any]]:
    reuse = os.environ.get("STREAMFLOW_BENCH_TEST_OUTPUT", "")
    output = Path(reuse) if reuse else ROOT / "test-output"
    figures_file = output / "reliability.json"
    scheduler_file = output / "reliability-scheduler.json"
    if reuse:  # the figures of a `make test` that already ran (e.g. in a clean clone), not a new run
        source = f"from the fault tests of the test run that wrote {output}"
        returncode = 0
    else:
        for stale in (figures_file, scheduler_file):
            stale.unlink(missing_ok=True)
        # the e2e module holds the scheduler fault (a bootstrap_pipeline run has to be in flight)
        argv = ["tests/e2e", "tests/integration/faults", "-k", "killed or restarted or bad_input"]
        returncode = subprocess.run([sys.executable, "-m", "pytest", *argv, "-q", "-p", "no:cacheprovider"],
                                    cwd=ROOT, check=False).returncode
        source = "pytest " + " ".join(argv)
    if not figures_file.exists():
        raise RuntimeError(f"the fault tests wrote no figures ({source}, exit {returncode})")
    figures: list[dict[str, Any]] = []
    for row in json.loads(figures_file.read_text()):
        fault = row["fault"]
        counts = (f"{row['events']} events ({row['valid']} valid, {row['malformed']} malformed): "
                  f"lost {row['lost']}, duplicated {row['duplicated']}, DLQ missing {row['dlq_missing']}, "
                  f"DLQ duplicated {row['dlq_duplicated']}, alerts {row['alerts']} "
                  f"({row['alerts_without_bronze']} without a bronze row); {source}")
        figures.append({"figure": f"{fault}: lost + duplicated valid events", "value": row["lost"] + row["duplicated"],
                        "unit": "events", "goal": "<= 0", "notes": counts})
        figures.append({"figure": f"{fault}: malformed events missing from / duplicated in dlq.errors",
                        "value": row["dlq_missing"] + row["dlq_duplicated"], "unit": "events", "goal": "<= 0"})
        if row["recovery_s"] is not None or row["downtime_s"] is not None:
            figures.append({"figure": f"{fault}: recovery (fault -> bronze grows again)",
                            "value": row["recovery_s"], "unit": "s", "goal": "report",
                            "notes": f"the failed part was back after {row['downtime_s']} s"})
    if scheduler_file.exists():
        row = json.loads(scheduler_file.read_text())
        figures.append({"figure": f"{row['fault']}: run completes", "value": int(row["final_state"] == "success"),
                        "unit": "bool", "goal": ">= 1",
                        "notes": f"killed while {', '.join(row['running_tasks'])} ran; scheduler back after "
                                 f"{row['downtime_s']} s; the run finished "
                                 f"{row['run_finished_after_restart_s']} s later"})
    if returncode != 0:
        figures.append({"figure": "fault tests passed", "value": 0, "unit": "bool", "goal": ">= 1",
                        "notes": f"pytest exit {returncode}: see its output"})
    return figures
