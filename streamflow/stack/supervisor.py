"""Start, check and stop the local stack in dependency order; the single way services are started
(the CLI, `make up` and the test fixtures all come through here)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

from streamflow.logs import get_log
from streamflow.settings import Settings
from streamflow.stack import process
from streamflow.stack.airflow import AIRFLOW_COMPONENTS, AirflowComponent
from streamflow.stack.base import Service, ServiceStatus
from streamflow.stack.kafka import KafkaService
from streamflow.stack.postgres import PostgresService

log = get_log("streamflow.stack")

GROUPS = {"airflow": [f"airflow-{c}" for c in AIRFLOW_COMPONENTS]}


def all_services(settings: Settings) -> list[Service]:
    services: list[Service] = [PostgresService(settings), KafkaService(settings)]
    services += [AirflowComponent(settings, c) for c in AIRFLOW_COMPONENTS]
    return services


def select(settings: Settings, only: Iterable[str] | None = None, *, with_deps: bool = True) -> list[Service]:
    services = all_services(settings)
    if not only:
        return services
    wanted: set[str] = set()
    for name in only:
        wanted.update(GROUPS.get(name, [name]))
    known = {s.name for s in services}
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown service(s) {sorted(unknown)}; known: {sorted(known | set(GROUPS))}")
    # Dependencies: Airflow needs Postgres.
    if with_deps and any(n.startswith("airflow-") for n in wanted):
        wanted.add("postgres")
    return [s for s in services if s.name in wanted]


def up(settings: Settings, only: Iterable[str] | None = None) -> list[str]:
    """Start what is not running, wait for readiness; return the names this call started.

    Services start in dependency order; the Airflow components start together once the metadata
    DB is migrated, then are awaited together (they need ~5 s each, in parallel instead of in turn).
    """
    for directory in (settings.run_dir, settings.logs_dir):
        directory.mkdir(parents=True, exist_ok=True)
    started: list[str] = []
    pending: list[tuple[Service, float]] = []

    def settle() -> None:
        for service, began in pending:
            service.wait_ready()
            service.after_ready()
            log.info("ready", service=service.name, seconds=f"{time.monotonic() - began:.1f}",
                     at=service.describe())
        pending.clear()

    for service in select(settings, only):
        parallel = service.name.startswith("airflow-")
        if not parallel:
            settle()
        if service.is_running():
            service.wait_ready()
            service.after_ready()
            log.info("already running", service=service.name)
            continue
        began = time.monotonic()
        log.info("starting", service=service.name, log=service.log_file)
        service.prepare()
        service.start()
        started.append(service.name)
        pending.append((service, began))
        if not parallel:
            settle()
    settle()
    return started


def down(settings: Settings, only: Iterable[str] | None = None) -> list[str]:
    """Stop services in reverse dependency order; return the names that were running."""
    stopped = []
    for service in reversed(select(settings, only, with_deps=False)):
        if service.stop():
            stopped.append(service.name)
            log.info("stopped", service=service.name)
    return stopped


def kill(settings: Settings, name: str, sig: signal.Signals = signal.SIGKILL, *, timeout_s: float = 30.0) -> int:
    """Send ``sig`` to one service's whole process group, as a crash (OOM, node loss) would; return
    the pid that was killed, once no process of the group is left.

    Nothing restarts the service: that is :func:`up`'s job (as a Kubernetes controller restarts a pod),
    so fault tests can probe the outage in between. Raises if the service is not running or survives.
    """
    service = select(settings, [name], with_deps=False)[0]
    pid = service.pid_file.alive_pid()
    if pid is None:
        raise process.ServiceError(f"{name} is not running: nothing to kill (start it with `streamflow up`)")
    log.warning("killing service", service=name, pid=pid, signal=sig.name)
    os.killpg(pid, sig)
    deadline = time.monotonic() + timeout_s
    while process.group_members(pid) and time.monotonic() < deadline:  # delivery is asynchronous
        time.sleep(0.05)
    if process.group_members(pid):
        raise process.ServiceError(f"{name} (process group {pid}) still alive {timeout_s:.0f} s after {sig.name}")
    return pid


def status(settings: Settings) -> list[ServiceStatus]:
    return [service.status() for service in all_services(settings)]
