"""`streamflow status` and `streamflow logs`: what runs where, with which credentials, how far behind.

Status shows the consumer lag of every Flink job next to the services: a job that is RUNNING but
whose group does not move is the first thing an operator wants to see, and the lag says it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from streamflow.settings import Settings


def print_status(settings: Settings, out: TextIO = sys.stdout) -> bool:
    """Print services, Flink jobs, consumer lag, URLs and credentials; return whether every service is ready."""
    from streamflow.runtime import local_jobs
    from streamflow.stack import supervisor
    from streamflow.stack.airflow import admin_password

    rows = supervisor.status(settings)
    width = max(len(r.name) for r in rows)
    for row in rows:
        state = "healthy" if row.ready else ("starting/unhealthy" if row.running else "stopped")
        pid = str(row.pid) if row.pid else "-"
        print(f"  {row.name:<{width}}  {state:<18} pid={pid:<8} {row.detail}", file=out)
    for line in local_jobs.status_lines(settings):
        print(f"  {line}", file=out)
    kafka_ready = any(r.name == "kafka" and r.ready for r in rows)
    for line in lag_lines(settings, kafka_ready):
        print(line, file=out)
    password = admin_password(settings)
    print(f"  Airflow UI: {settings.airflow_url}  user: {settings.airflow_admin_user}  password: "
          f"{password or '(generated at first Airflow start)'}", file=out)
    print(f"  Lineage:    {settings.airflow_url}/plugin/streamflow-lineage", file=out)
    print(f"  Logs:       {settings.logs_dir}", file=out)
    return all(r.ready for r in rows)


def lag_lines(settings: Settings, kafka_ready: bool) -> list[str]:
    """``consumer lag`` lines for status (short timeouts: status must answer fast when Kafka is sick)."""
    if not kafka_ready:
        return ["  consumer lag: unknown (Kafka is not running)"]
    from streamflow.ops.kafka import describe_lag, job_lags

    try:
        lags = job_lags(settings, timeout_s=5.0)
    except Exception as error:  # status must still print the URLs and password below
        return [f"  consumer lag: unknown ({type(error).__name__}: {error or 'no answer within 5 s'})"]
    width = max((len(r.job) for r in lags), default=10)
    return ["  consumer lag (records each job's group is behind its topics):"] + [
        f"    {r.job:<{width}}  {describe_lag(r)}" for r in lags]


def log_path(settings: Settings, service: str) -> Path:
    """The log of a service (``kafka``, ``airflow-scheduler``...) or of a Flink job's process:
    ``flink-<job>`` (its TaskManager: where the Python operators log), ``flink-<job>-jobmanager``,
    ``flink-<job>-submit``; either spelling of the job (``fraud_detector`` / ``fraud-detector``)."""
    if service.startswith("flink-"):
        from streamflow.flink_spec import SpecError
        from streamflow.ops.flink import job
        from streamflow.runtime.flink_local_config import layout

        rest = service.removeprefix("flink-")
        part = "taskmanager"
        for suffix in ("-jobmanager", "-taskmanager", "-submit"):
            if rest.endswith(suffix):
                rest, part = rest.removesuffix(suffix), suffix.lstrip("-")
        try:
            paths = layout(job(rest), settings)
        except SpecError:
            return settings.logs_dir / f"{service}.log"
        return {"jobmanager": paths.jobmanager_log, "taskmanager": paths.taskmanager_log,
                "submit": paths.submit_log}[part]
    return settings.logs_dir / f"{service}.log"


def known_logs(settings: Settings) -> list[str]:
    from streamflow.ops.flink import pipeline_jobs

    services = sorted(p.stem for p in settings.logs_dir.glob("*.log"))
    return services + [f"flink-{spec.job_key}[-jobmanager|-submit]" for spec in pipeline_jobs()]


def show_log(settings: Settings, service: str, lines: int, follow: bool, out: TextIO = sys.stdout) -> int:
    path = log_path(settings, service)
    if not path.exists():
        print(f"no log for {service!r} at {path}; known: {', '.join(known_logs(settings)) or 'none yet'}",
              file=sys.stderr)
        return 2
    print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]), file=out)
    if follow:
        with open(path, errors="replace") as handle:
            handle.seek(0, 2)
            try:
                while True:
                    line = handle.readline()
                    if line:
                        print(line, end="", file=out, flush=True)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return 0
    return 0
