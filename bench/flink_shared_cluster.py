"""Can two thread-mode PyFlink jobs share one local cluster on PyFlink 1.20.5? (issue 13, "one cluster")

ADR 0003 chose one cluster per job because a second thread-mode job on a session cluster crashed
(``NoSuchFieldException: loadedLibraryNames`` while pemja reloads libpython). This check starts one
cluster with two slots through the local runtime, submits the fraud-detector skeleton twice (two
jobs, one Python interpreter per TaskManager process), feeds both from a preloaded topic, and
reports whether both ran and drained, and whether the TaskManager log names the pemja error.

    python -m bench.flink_shared_cluster
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import urllib.request
import uuid
from typing import Any

from bench.flink_stages import BACKLOG, HASHMAP, Variant, preload, reading, variant_spec


def _jobs(rest: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{rest}/jobs/overview", timeout=5) as response:  # noqa: S310 - loopback
        return list(json.loads(response.read())["jobs"])


def _records(rest: str, jid: str) -> int:
    with urllib.request.urlopen(f"{rest}/jobs/{jid}", timeout=5) as response:  # noqa: S310 - loopback
        detail = json.loads(response.read())
    return max((int(v["metrics"].get("read-records", 0)) for v in detail["vertices"]), default=0)


def run() -> list[dict[str, Any]]:
    from streamflow.runtime import flink_local_config, flink_local_lifecycle, flink_local_rest
    from streamflow.settings import load_settings
    from streamflow.stack import supervisor
    from streamflow.topics import ensure_topics

    settings = load_settings()
    started = supervisor.up(settings, ["postgres", "kafka"])
    ensure_topics(settings)
    topic = f"bench.shared.{uuid.uuid4().hex[:6]}"
    preload(settings, topic)
    settings = reading(settings, topic)  # both jobs read the preloaded topic
    variant = Variant("shared-cluster", "fraud-detector", "two skeleton jobs on one cluster", parallelism=1,
                      configuration={**HASHMAP, "taskmanager.numberOfTaskSlots": "2"},
                      module="bench.flink_detector_skeleton", extra_args=("--stage", "score"))
    first = variant_spec(variant, settings, topic)
    # same cluster (same name), own consumer group; stateless so it does not restore the first job's checkpoint
    second = dataclasses.replace(variant_spec(variant, settings, topic), upgrade_mode="stateless")
    outcome: dict[str, Any] = {}
    try:
        flink_local_lifecycle.start_cluster(first, settings, timeout_s=300)
        ids = [flink_local_lifecycle.submit(first, settings), flink_local_lifecycle.submit(second, settings)]
        rest = flink_local_rest.rest_url(first, settings)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = {j["jid"]: j["state"] for j in _jobs(rest)}
            counts = {jid: _records(rest, jid) if states.get(jid) == "RUNNING" else 0 for jid in ids}
            outcome = {"states": [states.get(jid) for jid in ids], "records": list(counts.values())}
            if all(c >= BACKLOG for c in counts.values()) or {"FAILED", "RESTARTING"} & set(states.values()):
                break
            time.sleep(3)
        log = flink_local_config.layout(first, settings).taskmanager_log.read_text(errors="replace")
        outcome["pemja_error_in_log"] = "loadedLibraryNames" in log
        outcome["exceptions_in_log"] = log.count("Exception")
    finally:
        flink_local_lifecycle.stop(first, settings, reset_state=True)
        shutil.rmtree(flink_local_config.layout(first, settings).root, ignore_errors=True)
        shutil.rmtree(flink_local_config.layout(first, settings).cluster_root, ignore_errors=True)
        if started:
            supervisor.down(settings, started)
    records = outcome.get("records", [0])
    both = outcome.get("states") == ["RUNNING", "RUNNING"] and all(c >= BACKLOG for c in records)
    return [{"figure": "two thread-mode PyFlink jobs drained on one cluster", "value": 1 if both else 0,
             "unit": "yes=1", "goal": "informational",
             "notes": f"PyFlink 1.20.5, one TaskManager with 2 slots, two jobs of bench/flink_detector_skeleton.py "
                      f"(--stage score, p=1) on a {BACKLOG}-event topic each: {json.dumps(outcome)}"}]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
