"""The test suite never uses a person's stack: its own state dir and ports, the shared installation,
and a claim on its state dir that wipes only a test stack and stops only what its own pid files name.
(tests/integration/stack/test_user_stack_untouched.py proves the same with real PostgreSQL and Kafka.)"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamflow.settings import Settings, load_settings
from streamflow.stack.process import PidFile, spawn
from tests.stack_isolation import (
    AIRFLOW_PORTS,
    DROPPED,
    PORT_RANGE,
    PORT_SETTINGS,
    TEST_STACK_NAME,
    StackInUse,
    busy_ports,
    check_wipeable,
    claim,
    session_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
PERSON_PORTS = {"STREAMFLOW_POSTGRES_PORT": "55544", "STREAMFLOW_KAFKA_PORT": "59141",
                "STREAMFLOW_KAFKA_CONTROLLER_PORT": "59142", "STREAMFLOW_AIRFLOW_PORT": "8140",
                "STREAMFLOW_FLINK_REST_PORT_BASE": "18140"}


def _clean_settings(**overrides: object) -> Settings:
    """Settings as a person's shell without STREAMFLOW_* variables would build them (`make up`)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.upper().startswith("STREAMFLOW_")}
    try:
        return load_settings(**overrides)
    finally:
        os.environ.update(saved)


def _ports(s: Settings) -> set[int]:
    base = s.flink_rest_port_base
    return {s.postgres_port, s.kafka_port, s.kafka_controller_port, s.airflow_port,
            *range(base, base + 3), *range(base + 1000, base + 1003)}


def _data_paths(s: Settings) -> list[Path]:
    from streamflow.stack.kafka import KafkaService
    from streamflow.stack.postgres import PostgresService

    return [PostgresService(s).data_dir, KafkaService(s).data_dir, s.state_dir / "flink", s.logs_dir, s.run_dir,
            s.secrets_dir, s.airflow_home, s.dbt_artifacts]


# --- the session environment ----------------------------------------------------------------------
def test_session_gets_its_own_state_dir_and_ports_and_the_persons_installation(tmp_path: Path) -> None:
    person = {"STREAMFLOW_STATE_DIR": str(tmp_path / "mine"), **PERSON_PORTS,
              "STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:59141", "STREAMFLOW_DBT_ARTIFACTS_DIR": "/x"}
    env, dropped = session_environment(person, REPO_ROOT, random.Random(7))
    assert env["STREAMFLOW_STATE_DIR"] == str(tmp_path / "mine" / TEST_STACK_NAME)
    assert env["STREAMFLOW_INSTALL_DIR"] == str(tmp_path / "mine")
    assert set(dropped) == {"STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "STREAMFLOW_DBT_ARTIFACTS_DIR"} <= set(DROPPED)
    ports = [int(env[n]) for n in [*PORT_SETTINGS, *AIRFLOW_PORTS]]
    assert len(set(ports)) == len(ports) and all(PORT_RANGE[0] <= p < PORT_RANGE[1] for p in ports)
    assert not {str(p) for p in ports} & set(PERSON_PORTS.values())


def test_explicit_install_dir_is_kept_and_default_base_is_the_repos(tmp_path: Path) -> None:
    env, _ = session_environment({"STREAMFLOW_INSTALL_DIR": str(tmp_path / "inst")}, REPO_ROOT)
    assert env["STREAMFLOW_INSTALL_DIR"] == str(tmp_path / "inst")
    assert env["STREAMFLOW_STATE_DIR"] == str(REPO_ROOT / ".streamflow" / TEST_STACK_NAME)


def test_a_nested_session_keeps_the_outer_one(tmp_path: Path) -> None:
    assert session_environment({"STREAMFLOW_STATE_DIR": str(tmp_path / TEST_STACK_NAME)}) == ({}, [])


def test_this_session_runs_apart_from_the_default_stack() -> None:
    """The settings this pytest session builds (conftest set its environment) share nothing with the
    stack `make up` starts in the same checkout: not one data path, not one port; only the installation."""
    session, person = load_settings(), _clean_settings()
    assert session.state_dir.name == TEST_STACK_NAME and session.state_dir != person.state_dir
    assert session.install_dir == person.install_dir == person.state_dir
    assert session.venvs_dir == person.venvs_dir and session.jars_dir == person.jars_dir
    for path in _data_paths(session):
        assert session.state_dir in path.parents, path
    assert not set(_data_paths(session)) & set(_data_paths(person))
    assert not _ports(session) & _ports(person)
    assert session.kafka_bootstrap != person.kafka_bootstrap and session.warehouse_dsn != person.warehouse_dsn
    assert not {os.environ[n] for n in AIRFLOW_PORTS} & {"8793", "8794"}   # Airflow's default log server ports


def test_child_processes_inherit_the_session_stack() -> None:
    out = subprocess.run([sys.executable, "-c", "from streamflow.settings import load_settings as l; "
                          "s = l(); print(s.state_dir, s.kafka_port)"], capture_output=True, text=True, check=True)
    session = load_settings()
    assert out.stdout.split() == [str(session.state_dir), str(session.kafka_port)]


# --- claiming the state dir -----------------------------------------------------------------------
def _person_and_test(tmp_path: Path) -> tuple[Path, Settings]:
    """A person's state dir with data and an installation, and a test stack under it with leftovers."""
    person = tmp_path / "state"
    (person / "postgres" / "data").mkdir(parents=True)
    (person / "postgres" / "data" / "marker").write_text("the person's data")
    (person / "venvs" / "dev").mkdir(parents=True)
    (person / "venvs" / "dev" / "marker").write_text("the installation")
    env, _ = session_environment({"STREAMFLOW_STATE_DIR": str(person)}, REPO_ROOT)
    fields = {"STREAMFLOW_STATE_DIR": "state_dir", "STREAMFLOW_INSTALL_DIR": "install_dir", **PORT_SETTINGS}
    test = load_settings(**{field: env[name] for name, field in fields.items()})
    stale = test.state_dir / "kafka" / "data"
    stale.mkdir(parents=True)
    (stale / "poison").write_text("a message left by an earlier session")
    (test.state_dir / "venvs").symlink_to(person / "venvs")   # as a developer might link it: never followed
    return person, test


def test_claim_wipes_only_the_test_stack_and_stops_only_its_own_processes(tmp_path: Path) -> None:
    person, test = _person_and_test(tmp_path)
    # A process of a crashed earlier test session, recorded in the test stack's pid file...
    leftover = PidFile(test.run_dir / "kafka.pid")
    spawn("kafka", ["sleep", "600"], pid_file=leftover, log_file=test.logs_dir / "kafka.log")
    pid = leftover.alive_pid()
    assert pid is not None
    # ...and a process of the person's stack, which looks the same but is recorded under their state dir.
    theirs = PidFile(person / "run" / "kafka.pid")
    spawn("kafka", ["sleep", "600"], pid_file=theirs, log_file=person / "logs" / "kafka.log")
    try:
        with claim(test, environ={}) as state:
            assert state == test.state_dir and list(state.iterdir()) == []
            assert leftover.alive_pid() is None
            assert theirs.alive_pid() is not None
            assert (person / "postgres" / "data" / "marker").read_text() == "the person's data"
            assert (person / "venvs" / "dev" / "marker").read_text() == "the installation"
    finally:
        from streamflow.stack.process import stop

        stop("kafka", theirs)
        stop("kafka", leftover)


def test_claim_refuses_a_second_session(tmp_path: Path) -> None:
    _, test = _person_and_test(tmp_path)
    with claim(test, environ={}):
        (test.state_dir / "in-use").write_text("by the first session")
        with pytest.raises(StackInUse, match=rf"another pytest session \(pid {os.getpid()}"), \
                claim(test, environ={}):
            pass
        assert (test.state_dir / "in-use").exists()


def test_claim_refuses_taken_ports_naming_the_setting(tmp_path: Path) -> None:
    _, test = _person_and_test(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", test.kafka_port))
        sock.listen()
        assert busy_ports(test, {}) == [f"STREAMFLOW_KAFKA_PORT={test.kafka_port}"]
        with pytest.raises(StackInUse, match=f"STREAMFLOW_KAFKA_PORT={test.kafka_port}"), \
                claim(test, environ={}):
            pass


@pytest.mark.parametrize("name", ["state", ".streamflow", "test-stacks"])
def test_only_a_test_stack_is_ever_wiped(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(StackInUse, match="refusing to wipe"):
        check_wipeable(tmp_path / name, tmp_path / "install")
    assert (tmp_path / name).exists()


def test_the_installation_is_never_inside_a_wiped_stack(tmp_path: Path) -> None:
    stack = tmp_path / TEST_STACK_NAME
    with pytest.raises(StackInUse, match="installation"):
        check_wipeable(stack, stack)
    with pytest.raises(StackInUse, match="installation"):
        check_wipeable(stack, stack / "venvs")
    check_wipeable(stack, tmp_path)


def test_the_safety_net_stops_leftovers_by_pid_file(tmp_path: Path) -> None:
    _, test = _person_and_test(tmp_path)
    leftover = PidFile(test.run_dir / "kafka.pid")
    spawn("kafka", ["sleep", "600"], pid_file=leftover, log_file=test.logs_dir / "kafka.log")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STREAMFLOW_")}
    env["STREAMFLOW_STATE_DIR"] = str(tmp_path / "state")
    proc = subprocess.run([sys.executable, "-m", "tests.stack_isolation", "stop"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "stopped kafka" in proc.stdout
    deadline = time.monotonic() + 10
    while leftover.alive_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover.alive_pid() is None
