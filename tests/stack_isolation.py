"""The test suite's own stack: its own state dir and ports, the person's installation.

Why: the suite truncates bronze tables, replays topics and restarts Flink jobs. Run against the
stack a person started with `make up` (same state dir, same ports), it destroyed their data, and
their leftovers broke the tests (a poison message still in their topic, their traffic written into a
bronze table the dbt tests had just truncated). So a pytest session never uses the person's stack:

- state: ``<STREAMFLOW_STATE_DIR or .streamflow>/test-stack`` (PostgreSQL and Kafka data, Flink
  checkpoints, Airflow home, logs, pid files, secrets). It is wiped when the session first needs
  services, after stopping what a crashed earlier session left there (by its pid files only);
- ports: picked free at session start (below the kernel's ephemeral range), never the person's;
- endpoints that would point elsewhere (``STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS``,
  ``STREAMFLOW_AIRFLOW_BASE_URL``, ``STREAMFLOW_DBT_ARTIFACTS_DIR``) are dropped for the session;
- installation (venvs, jars, tools): shared, through ``STREAMFLOW_INSTALL_DIR`` (the person's
  ``STREAMFLOW_INSTALL_DIR``, else their state dir).

A person's explicit ``STREAMFLOW_STATE_DIR``/``STREAMFLOW_INSTALL_DIR`` choose *where* the test stack
and the installation are; their port variables describe their own stack and are not used by tests.
A session nested in another (its state dir is already a ``test-stack``) keeps the outer environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from streamflow.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_STACK_NAME = "test-stack"
PORT_RANGE = (20000, 32000)   # below Linux' ephemeral range (32768+): no client socket takes them meanwhile
FLINK_CLUSTERS = 1             # flink_local: the catalog's jobs share one cluster, REST port = the base
FLINK_RPC_OFFSET = 1000        # flink_local: jobmanager.rpc.port = REST port + 1000

#: Settings a person may set for their own stack that would lead the suite to their services or files.
DROPPED = ("STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "STREAMFLOW_AIRFLOW_BASE_URL", "STREAMFLOW_DBT_ARTIFACTS_DIR")

#: The suite's own topic names, unlike the defaults and the names written in k8s/base: every integration
#: and e2e test (bootstrap_pipeline end to end included) runs on renamed topics, so a job, the generator or
#: a query that still uses a written name reads an empty topic and its test fails (issue 16).
SESSION_TOPICS = {
    "STREAMFLOW_TOPIC_TRANSACTIONS": "suite.card-transactions",
    "STREAMFLOW_TOPIC_ALERTS": "suite.fraud-alerts",
    "STREAMFLOW_TOPIC_METRICS": "suite.live-metrics",
    "STREAMFLOW_TOPIC_DLQ": "suite.dead-letters",
}

#: env variable -> settings field, for the ports the session picks.
PORT_SETTINGS = {
    "STREAMFLOW_POSTGRES_PORT": "postgres_port",
    "STREAMFLOW_KAFKA_PORT": "kafka_port",
    "STREAMFLOW_KAFKA_CONTROLLER_PORT": "kafka_controller_port",
    "STREAMFLOW_AIRFLOW_PORT": "airflow_port",
    "STREAMFLOW_FLINK_REST_PORT_BASE": "flink_rest_port_base",
}
#: Airflow's own listeners (not StreamFlow settings): the scheduler's and triggerer's log servers.
AIRFLOW_PORTS = ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")


class StackInUse(RuntimeError):
    """Another pytest session holds this test stack, or a port it needs is taken."""


# --- the session environment ----------------------------------------------------------------------
def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_ports(count: int, rng: random.Random | None = None) -> tuple[list[int], int]:
    """``count`` free single ports and one Flink REST base whose REST and RPC ports are all free."""
    rng = rng or random.Random()
    taken: set[int] = set()

    def free(*ports: int) -> bool:
        return all(p not in taken and _port_free(p) for p in ports)

    singles: list[int] = []
    for _ in range(20_000):
        if len(singles) == count:
            break
        port = rng.randrange(*PORT_RANGE)
        if free(port):
            singles.append(port)
            taken.add(port)
    for _ in range(20_000):
        base = rng.randrange(PORT_RANGE[0], PORT_RANGE[1] - FLINK_RPC_OFFSET - FLINK_CLUSTERS)
        block = [base + i for i in range(FLINK_CLUSTERS)] + [base + FLINK_RPC_OFFSET + i for i in range(FLINK_CLUSTERS)]
        if len(singles) == count and free(*block):
            return singles, base
    raise StackInUse(f"no {count} free ports plus a Flink port block in {PORT_RANGE} on 127.0.0.1")


def session_environment(environ: Mapping[str, str], repo_root: Path = REPO_ROOT,
                        rng: random.Random | None = None) -> tuple[dict[str, str], list[str]]:
    """The variables to set and to remove for a pytest session started with ``environ``."""
    base = Path(environ.get("STREAMFLOW_STATE_DIR") or repo_root / ".streamflow").absolute()
    if base.name == TEST_STACK_NAME:
        return {}, []   # nested in a session: its stack, its ports
    install = Path(environ.get("STREAMFLOW_INSTALL_DIR") or base).absolute()
    singles, flink_base = pick_ports(len(PORT_SETTINGS) - 1 + len(AIRFLOW_PORTS), rng)
    env = {"STREAMFLOW_STATE_DIR": str(base / TEST_STACK_NAME), "STREAMFLOW_INSTALL_DIR": str(install)}
    names = [n for n in PORT_SETTINGS if n != "STREAMFLOW_FLINK_REST_PORT_BASE"] + list(AIRFLOW_PORTS)
    env.update({name: str(port) for name, port in zip(names, singles, strict=True)})
    env["STREAMFLOW_FLINK_REST_PORT_BASE"] = str(flink_base)
    env.update(SESSION_TOPICS)
    return env, [name for name in DROPPED if name in environ]


def apply_session_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """Set the session's variables in ``environ`` (``os.environ``: child processes inherit them)."""
    env, dropped = session_environment(environ)
    for name in dropped:
        environ.pop(name, None)
    environ.update(env)
    return env


# --- claiming the state dir -----------------------------------------------------------------------
def _lock_path(state_dir: Path) -> Path:
    return state_dir.parent / f"{state_dir.name}.lock"


def check_wipeable(state_dir: Path, install_dir: Path) -> None:
    """Refuse to wipe anything but a test stack, and never the installation it uses."""
    state, install = state_dir.resolve(), install_dir.resolve()
    if state.name != TEST_STACK_NAME:
        raise StackInUse(f"refusing to wipe {state}: only a folder named {TEST_STACK_NAME!r} is a test stack")
    if install == state or state in install.parents:
        raise StackInUse(f"refusing to wipe {state}: the installation {install} is inside it")


def busy_ports(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The test stack's ports (its settings, and Airflow's log servers from ``environ``) that something
    else already listens on, named by setting."""
    ports = {f"STREAMFLOW_{field.upper()}": int(getattr(settings, field)) for field in PORT_SETTINGS.values()}
    base = ports.pop("STREAMFLOW_FLINK_REST_PORT_BASE")
    for i in range(FLINK_CLUSTERS):
        ports[f"STREAMFLOW_FLINK_REST_PORT_BASE+{i}"] = base + i
        ports[f"STREAMFLOW_FLINK_REST_PORT_BASE+{i} (+{FLINK_RPC_OFFSET}, Flink RPC)"] = base + FLINK_RPC_OFFSET + i
    for name in AIRFLOW_PORTS:
        if environ.get(name):
            ports[name] = int(environ[name])
    return [f"{name}={port}" for name, port in ports.items() if not _port_free(port, settings.host)]


@contextlib.contextmanager
def claim(settings: Settings, environ: Mapping[str, str] = os.environ) -> Iterator[Path]:
    """Hold the test stack for this session: lock it, stop what a crashed earlier session left running
    there (pid files of this state dir only), wipe it, check its ports are free. Yields the state dir.

    Services started inside are the session's own; the caller stops them before leaving."""
    from streamflow.runtime import local_jobs
    from streamflow.stack import supervisor

    state = settings.state_dir
    check_wipeable(state, settings.install_dir)
    state.parent.mkdir(parents=True, exist_ok=True)
    lock: IO[str] = open(_lock_path(state), "a+")  # noqa: SIM115 - held for the whole session
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise StackInUse(f"another pytest session ({lock.read().strip() or 'pid unknown'}) uses the test stack "
                             f"{state}; wait for it, or run this one with another STREAMFLOW_STATE_DIR") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
        lock.flush()
        if state.exists():
            local_jobs.stop_all(settings)
            supervisor.down(settings)
            shutil.rmtree(state)
        state.mkdir(parents=True)
        busy = busy_ports(settings, environ)
        if busy:
            raise StackInUse(f"ports of the test stack are taken by another process: {', '.join(busy)}")
        yield state
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def stop_leftovers(settings: Settings) -> list[str]:
    """Stop every service and Flink cluster recorded in the test stack's pid files (a safety net for
    a session that was killed before its fixtures could stop them)."""
    from streamflow.runtime import local_jobs
    from streamflow.stack import supervisor

    check_wipeable(settings.state_dir, settings.install_dir)
    if not settings.state_dir.exists():
        return []
    local_jobs.stop_all(settings)
    return supervisor.down(settings)


if __name__ == "__main__":   # scripts/run_tests.sh: `python -m tests.stack_isolation stop`
    if sys.argv[1:] != ["stop"]:
        raise SystemExit("usage: python -m tests.stack_isolation stop")
    apply_session_environment(os.environ)
    from streamflow.settings import load_settings

    stopped = stop_leftovers(load_settings())
    print(f"test stack: {'stopped ' + ', '.join(stopped) if stopped else 'nothing left running'}")
