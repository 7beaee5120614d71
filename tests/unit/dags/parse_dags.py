"""Child process for the DAG integrity tests: parse dags/ like Airflow does, report as JSON.

Runs in a fresh interpreter per runtime (settings are read once per process). Every socket connect
raises, so a DAG file that touches the network or a database at parse time fails to import.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path


def _no_network(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("network access at DAG parse time")


def main() -> None:
    dags_dir = Path(sys.argv[1])
    socket.socket.connect = _no_network  # type: ignore[assignment,method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    from airflow.dag_processing.dagbag import DagBag

    warm = DagBag(dag_folder=str(dags_dir), safe_mode=False)
    timings = {}
    for path in sorted(dags_dir.glob("*.py")):
        began = time.perf_counter()
        DagBag(dag_folder=str(path), safe_mode=False)
        timings[path.name] = time.perf_counter() - began
    dags = {}
    for dag_id, dag in warm.dags.items():
        dags[dag_id] = {
            "fileloc": Path(dag.fileloc).name,
            "tags": sorted(dag.tags),
            "schedule": " ".join(
                str(getattr(dag.timetable, attr, "")) for attr in ("description", "_expression", "expression")),
            "tasks": {
                t.task_id: {
                    "type": type(t).__name__,
                    "owner": t.owner,
                    "retries": t.retries,
                    "upstream": sorted(t.upstream_task_ids),
                    "attrs": {k: str(getattr(t, k)) for k in ("application_file", "pod_template_file", "arguments",
                                                              "namespace", "name", "stable_window_s",
                                                              "deploy_task_id")
                              if hasattr(t, k)},
                }
                for t in dag.tasks
            },
        }
    print(json.dumps({"import_errors": {k: str(v) for k, v in warm.import_errors.items()},
                      "dags": dags, "parse_seconds": timings}))


if __name__ == "__main__":
    main()
