"""Cold deploy of the pipeline's three Flink jobs through the local runtime (issue 13, ADR 0013).

From nothing (PostgreSQL and Kafka of an isolated stack running, topics and bronze created, no Flink
process, no checkpoint) the three jobs are deployed at once, one process per job, as bootstrap_pipeline's
three ``deploy_<job>`` tasks do. Measured: seconds until every job is RUNNING with all its tasks; RSS
of the JobManager(s) + TaskManager(s) once RUNNING; the configuration each job really got (checkpoint
storage and state backend from ``/jobs/<jid>/checkpoints/config`` and ``/jobs/<jid>/jobmanager/config``);
then a bounded generator run and whether its events reach bronze, alerts and metrics.

Runs against whatever ``streamflow`` is imported, so the same script measures the code before ADR 0013
(``git archive`` of an older commit on PYTHONPATH). Ports are picked free; the state dir is
``$STREAMFLOW_STATE_DIR`` (use a scratch one). Everything started is stopped at the end.

    python -m bench.flink_cold_deploy [events]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def _deploy(name: str, out: Any) -> None:
    from streamflow.flink_spec import load_all
    from streamflow.runtime import flink_local_lifecycle
    from streamflow.settings import load_settings

    began = time.monotonic()
    try:
        handle = flink_local_lifecycle.deploy(load_all()[name], load_settings())
        out.put((name, handle.job_id, handle.rest_url, round(time.monotonic() - began, 1), None))
    except Exception as error:  # reported, not raised: the parent collects all three
        out.put((name, None, None, round(time.monotonic() - began, 1), str(error)[-2000:]))


def _group_rss_mib(leader: int) -> float:
    """RSS of every live process in ``leader``'s process group (the start script and its JVM)."""
    total_kib = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != leader and int(stat.parent.name) != leader:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kib / 1024


def _rows(dsn: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def run(events: int = 5000) -> dict[str, Any]:
    from tests.stack_isolation import pick_ports

    singles, base = pick_ports(4, random.Random())
    names = ("POSTGRES_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "AIRFLOW_PORT")
    for name, port in zip(names, singles, strict=True):
        os.environ[f"STREAMFLOW_{name}"] = str(port)
    os.environ["STREAMFLOW_FLINK_REST_PORT_BASE"] = str(base)
    os.environ["STREAMFLOW_GENERATOR_EVENTS"] = str(events)

    import streamflow
    from streamflow.flink_spec import load_all
    from streamflow.generator_spec import bounded_run_args, load_generator_spec, local_argv
    from streamflow.runtime import flink_local, flink_local_config
    from streamflow.settings import load_settings
    from streamflow.stack import supervisor
    from streamflow.topics import ensure_topics
    from streamflow.warehouse import apply_migrations

    settings = load_settings()
    result: dict[str, Any] = {"code": str(Path(streamflow.__file__).parent.parent), "events": events}
    started = supervisor.up(settings, ["postgres", "kafka"])
    try:
        ensure_topics(settings)
        apply_migrations(settings)
        specs = load_all()
        jobs_to_deploy = list(specs)
        out: Any = multiprocessing.get_context("spawn").Queue()
        began = time.monotonic()
        procs = [multiprocessing.get_context("spawn").Process(target=_deploy, args=(n, out)) for n in jobs_to_deploy]
        for proc in procs:
            proc.start()
        deployed = [out.get(timeout=1800) for _ in procs]
        result["cold_deploy_s"] = round(time.monotonic() - began, 1)
        for proc in procs:
            proc.join()
        result["deploys"] = {n: {"job_id": j, "seconds": s, "error": e} for n, j, _, s, e in deployed}
        leaders = {}
        for spec in specs.values():
            paths = flink_local_config.layout(spec, settings)
            for pid_file in (paths.jobmanager_pid, paths.taskmanager_pid):
                pid = pid_file.alive_pid()
                if pid:
                    leaders[str(pid_file.path)] = pid
        time.sleep(20)  # settled: the jobs have been running a checkpoint interval or two
        result["rss_mib"] = {Path(k).stem: round(_group_rss_mib(v)) for k, v in leaders.items()}
        result["rss_total_mib"] = sum(result["rss_mib"].values())
        jobs: dict[str, Any] = {}
        for name, jid, rest, _, error in deployed:
            if error or not jid:
                continue
            checkpoints = _get(f"{rest}/jobs/{jid}/checkpoints/config")
            try:
                config = {e["key"]: e["value"] for e in _get(f"{rest}/jobs/{jid}/jobmanager/config")}
            except Exception:
                config = {}
            jobs[name] = {"rest": rest, "state": _get(f"{rest}/jobs/{jid}")["state"],
                          "checkpoint_storage": checkpoints.get("checkpoint_storage"),
                          "state_backend": checkpoints.get("state_backend"),
                          "interval_ms": checkpoints.get("interval"),
                          "state.checkpoints.dir": config.get("state.checkpoints.dir"),
                          "state.backend.type": config.get("state.backend.type")}
        result["jobs"] = jobs
        # events through the pipeline
        generator = load_generator_spec().with_args(*bounded_run_args(settings))
        argv, env = local_argv(generator, settings)
        gen_began = time.monotonic()
        subprocess.run(argv, env={**os.environ, **env}, cwd=settings.repo_root, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result["generator_s"] = round(time.monotonic() - gen_began, 1)
        dsn = settings.warehouse_dsn
        deadline = time.monotonic() + 600
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = {"bronze": _rows(dsn, "SELECT count(*) FROM bronze.raw_transactions"),
                      "alerts": _rows(dsn, "SELECT count(*) FROM bronze.raw_fraud_alerts"),
                      "metrics": _rows(dsn, "SELECT count(*) FROM bronze.realtime_metrics")}
            if counts["bronze"] >= events and counts["alerts"] > 0 and counts["metrics"] > 0:
                break
            time.sleep(5)
        result["all_in_bronze_s"] = round(time.monotonic() - gen_began, 1)
        while time.monotonic() < deadline:  # alerts and metrics settle: unchanged over 20 s
            time.sleep(20)
            settled = {"bronze": counts["bronze"],
                       "alerts": _rows(dsn, "SELECT count(*) FROM bronze.raw_fraud_alerts"),
                       "metrics": _rows(dsn, "SELECT count(*) FROM bronze.realtime_metrics")}
            if settled == counts:
                break
            counts = settled
        result["rows"] = counts
        result["rss_after_events_mib"] = {Path(k).stem: round(_group_rss_mib(v)) for k, v in leaders.items()}
        result["rss_after_events_total_mib"] = sum(result["rss_after_events_mib"].values())
    finally:
        flink_local.stop_all(settings)
        supervisor.down(settings, started)
    return result


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000), indent=2))
