"""One local Flink cluster for the pipeline's jobs (ADR 0013): the pure parts, and the REST client and
lifecycle against a fake JobManager (a real HTTP server on 127.0.0.1 answering Flink 1.20's shapes).

What must hold: the catalog's jobs share one cluster's ports, processes and lib dir but keep their own
checkpoints, job file, submit log and client configuration; cluster-level options and the container
env are merged, a conflict names the key and both files; each job's state, health and cancel see only
its own job; stopping or redeploying one job leaves the others and the cluster alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamflow import flink_health, flink_spec
from streamflow.catalog import flink_jobs
from streamflow.flink_spec import load_all, load_spec, spec_for
from streamflow.runtime import flink_local_config, flink_local_lifecycle, flink_local_rest, health
from streamflow.settings import get_settings, load_settings

JOBS = tuple(job.name for job in flink_jobs())
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def settings(tmp_path: Path):
    return load_settings(state_dir=tmp_path / "state", postgres_password="pw",  # pragma: allowlist secret
                         kafka_bootstrap_servers="127.0.0.1:59999")


@pytest.fixture()
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the specs that IS the catalog for the test (edit a file, the cluster sees it)."""
    target = tmp_path / "flink"
    shutil.copytree(flink_spec.SPEC_DIR, target)
    monkeypatch.setattr(flink_local_config, "flink_jobs", lambda: flink_jobs(target))
    return target


def _edit(path: Path, change: Any) -> None:
    document = yaml.safe_load(path.read_text())
    change(document["spec"])
    path.write_text(yaml.safe_dump(document))


# ---- layout and configuration ----------------------------------------------------------------------
def test_jobs_share_the_cluster_files_and_keep_their_own(settings) -> None:
    paths = [flink_local_config.layout(load_all()[name], settings) for name in JOBS]
    shared = {(p.cluster, p.cluster_root, p.cluster_conf_dir, p.lib_dir, p.jobmanager_pid.path, p.taskmanager_pid.path,
               p.jobmanager_log, p.taskmanager_log) for p in paths}
    assert len(shared) == 1 and paths[0].cluster == flink_local_config.SHARED_CLUSTER
    for attribute in ("root", "conf_dir", "checkpoints_dir", "savepoints_dir", "job_file", "submit_log"):
        assert len({getattr(p, attribute) for p in paths}) == len(JOBS), attribute
    assert all(p.conf_dir != p.cluster_conf_dir for p in paths)


def test_every_flink_process_keeps_its_temporary_files_under_the_state_dir(settings, monkeypatch) -> None:
    """Flink's io.tmp.dirs, the JVMs' java.io.tmpdir and Python's TMPDIR: all the cluster's tmp_dir, for the
    cluster's processes and each job's client (the system /tmp kept every run's files: 7 GB in a day)."""
    from streamflow.runtime import flink_local_files

    monkeypatch.setenv("JVM_ARGS", "-Djava.io.tmpdir=/tmp")  # a caller's own value must not win
    specs = [load_all()[name] for name in JOBS]
    paths = flink_local_config.layout(specs[0], settings)
    assert paths.tmp_dir.is_relative_to(settings.state_dir)
    envs = [flink_local_files.cluster_process_env(specs[0], settings, paths)]
    envs += [flink_local_files.process_env(spec, settings, flink_local_config.layout(spec, settings))
             for spec in specs]
    for env in envs:
        assert env["TMPDIR"] == str(paths.tmp_dir)
        assert env["JVM_ARGS"].split() == [f"-Djava.io.tmpdir={paths.tmp_dir}"]
    for spec in specs:
        assert flink_local_config.client_configuration(spec, settings)["io.tmp.dirs"] == str(paths.tmp_dir)


def test_slots_and_memory_follow_the_documented_rule(settings) -> None:
    specs = [load_all()[name] for name in JOBS]
    config = flink_local_config.cluster_configuration(specs[0], settings)
    assert config["taskmanager.numberOfTaskSlots"] == str(sum(s.parallelism for s in specs))
    largest_tm = max(flink_local_config.memory_mb(s.resources.taskmanager_memory) for s in specs)
    assert config["taskmanager.memory.process.size"] == (
        f"{largest_tm + flink_local_config.TASKMANAGER_MB_PER_EXTRA_JOB * (len(specs) - 1)}m")
    assert config["jobmanager.memory.process.size"] == \
        f"{max(flink_local_config.memory_mb(s.resources.jobmanager_memory) for s in specs)}m"
    assert flink_local_config.memory_mb("2Gi") == 2048 and flink_local_config.memory_mb("1728m") == 1728
    with pytest.raises(flink_local_config.FlinkJobError, match="not a quantity"):
        flink_local_config.memory_mb("2 bananas")


def test_job_options_go_with_the_submission_and_not_into_the_cluster(settings) -> None:
    specs = [load_all()[name] for name in JOBS]
    cluster = flink_local_config.cluster_configuration(specs[0], settings)
    assert not [k for k in cluster if flink_local_config.is_job_level(k)]
    assert cluster["classloader.parent-first-patterns.additional"] == "pemja."
    dirs = set()
    for spec in specs:
        client = flink_local_config.client_configuration(spec, settings)
        job = flink_local_config.job_configuration(spec, settings)
        assert client == {**cluster, **job}
        assert job["state.checkpoints.dir"] == flink_local_config.layout(spec, settings).checkpoints_dir.as_uri()
        assert job["state.backend.type"] == spec.flink_configuration["state.backend.type"]
        assert job["execution.checkpointing.interval"] == f"{settings.flink_checkpoint_interval_s}s"
        dirs.add(job["state.checkpoints.dir"])
    assert len(dirs) == len(specs)
    # a job-level option only one spec sets stays that job's
    processor = flink_local_config.job_configuration(load_all()["transaction-processor"], settings)
    detector = flink_local_config.job_configuration(load_all()["fraud-detector"], settings)
    assert "python.fn-execution.bundle.time" in processor and "python.fn-execution.bundle.time" not in detector


def test_a_cluster_level_key_with_two_values_fails_naming_it_and_both_files(settings, spec_dir: Path) -> None:
    _edit(spec_dir / "fraud-detector.yaml", lambda s: s["flinkConfiguration"].update({"web.submit.enable": "true"}))
    spec = load_all(spec_dir)["transaction-processor"]
    with pytest.raises(flink_local_config.FlinkJobError) as error:
        flink_local_config.cluster_configuration(spec, settings)
    message = str(error.value)
    assert "web.submit.enable" in message and "fraud-detector.yaml" in message
    assert re.search(r"(transaction-processor|realtime-aggregator)\.yaml", message), message
    # a job-level key with two values is fine: each job keeps its own
    _edit(spec_dir / "fraud-detector.yaml",
          lambda s: s["flinkConfiguration"].update({"web.submit.enable": "false", "state.backend.type": "hashmap"}))
    flink_local_config.cluster_configuration(load_all(spec_dir)["transaction-processor"], settings)
    detector = flink_local_config.job_configuration(load_all(spec_dir)["fraud-detector"], settings)
    assert detector["state.backend.type"] == "hashmap"


def test_the_taskmanager_env_merges_equal_values_and_refuses_two(settings, spec_dir: Path) -> None:
    env = flink_local_config.cluster_env(load_all(spec_dir)["fraud-detector"], settings)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:59999"
    assert env["WAREHOUSE_PASSWORD"] == "pw"  # pragma: allowlist secret
    for name in ("fraud-detector", "realtime-aggregator"):
        _edit(spec_dir / f"{name}.yaml",
              lambda s: s["podTemplate"]["spec"]["containers"][0]["env"].append({"name": "X_DEBUG", "value": "1"}))
    assert flink_local_config.cluster_env(load_all(spec_dir)["fraud-detector"], settings)["X_DEBUG"] == "1"
    _edit(spec_dir / "realtime-aggregator.yaml",
          lambda s: s["podTemplate"]["spec"]["containers"][0]["env"][-1].update({"value": "2"}))
    with pytest.raises(flink_local_config.FlinkJobError, match=r"X_DEBUG differs between .*fraud-detector\.yaml and "
                                                        r".*realtime-aggregator\.yaml"):
        flink_local_config.cluster_env(load_all(spec_dir)["transaction-processor"], settings)
    # the job's own submission still carries its own value
    assert flink_local_config.local_job_env(load_all(spec_dir)["realtime-aggregator"], settings)["X_DEBUG"] == "2"


def test_a_spec_outside_the_catalog_gets_its_own_cluster(settings) -> None:
    import dataclasses

    base = load_all()["fraud-detector"]
    variant = dataclasses.replace(base, name="stage-bench", parallelism=1)
    paths = flink_local_config.layout(variant, settings)
    assert paths.cluster == "stage_bench"
    assert paths.cluster_root != flink_local_config.layout(base, settings).cluster_root
    config = flink_local_config.cluster_configuration(variant, settings)
    assert config["rest.port"] == str(settings.flink_rest_port_base + 1)
    assert config["taskmanager.numberOfTaskSlots"] == base.flink_configuration["taskmanager.numberOfTaskSlots"]
    assert config["taskmanager.memory.process.size"] == base.resources.taskmanager_memory


def test_each_job_is_found_by_the_name_flink_reports() -> None:
    import dataclasses

    for name in JOBS:
        spec = load_all()[name]
        assert flink_local_config.flink_job_name(spec) == name
        source = (REPO / (spec.python_module.replace(".", "/") + ".py")).read_text()
        assert re.search(rf'^NAME = "{name}"$', source, re.M), f"{spec.python_module}.NAME is not {name!r}"
    variant = dataclasses.replace(load_all()["fraud-detector"], name="stage-x",
                                  args=(*load_all()["fraud-detector"].args, "--job-name", "x"))
    assert flink_local_config.flink_job_name(variant) == "x"


# ---- REST client and lifecycle against a fake JobManager running several jobs ---------------------
PROCESSOR, DETECTOR = "a" * 32, "b" * 32


class FakeCluster:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []

    def add(self, jid: str, name: str, state: str, restarts: int) -> None:
        now = int(time.time() * 1000)
        self.jobs[jid] = {"jid": jid, "name": name, "state": state, "start-time": now - 120_000,
                          "tasks": {"running": 2, "total": 2}, "restarts": restarts}

    def document(self, path: str) -> Any:
        now = int(time.time() * 1000)
        if path == "/jobs/overview":
            return {"jobs": [{k: v for k, v in j.items() if k != "restarts"} for j in self.jobs.values()]}
        parts = path.strip("/").split("/")
        job = self.jobs.get(parts[1]) if len(parts) >= 2 and parts[0] == "jobs" else None
        if job is None:
            return None
        if len(parts) == 2:
            return {"jid": job["jid"], "name": job["name"], "state": job["state"], "start-time": job["start-time"],
                    "timestamps": {"RUNNING": now - 100_000, "RESTARTING": 0, "FAILED": 0},
                    "vertices": [{"name": "v", "status": job["state"], "start-time": now - 100_000,
                                  "tasks": {job["state"]: 2}}]}
        if parts[2] == "metrics":
            return [{"id": "numRestarts", "value": str(job["restarts"])}]
        if parts[2] == "checkpoints":
            return {"counts": {"completed": 1}, "latest": {"completed": {
                "id": 3, "status": "COMPLETED", "trigger_timestamp": now - 5_000, "latest_ack_timestamp": now - 4_000},
                "savepoint": None, "failed": None, "restored": None}}
        if parts[2] == "exceptions":
            entries = [{"exceptionName": "java.io.IOException", "stacktrace": "boom", "timestamp": now - 1_000}]
            return {"root-exception": "boom" if job["restarts"] else None, "timestamp": now - 1_000,
                    "exceptionHistory": {"entries": entries if job["restarts"] else [], "truncated": False}}
        return None


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    cluster = FakeCluster()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = cluster.document(self.path.split("?")[0])
            payload = json.dumps(body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_PATCH(self) -> None:
            jid = self.path.split("/")[2].split("?")[0]
            cluster.cancelled.append(jid)
            if jid in cluster.jobs:
                cluster.jobs[jid]["state"] = "CANCELED"
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("STREAMFLOW_FLINK_REST_PORT_BASE", str(server.server_address[1]))
    get_settings.cache_clear()
    flink_local_config.layout(spec_for("fraud-detector"), get_settings()).jobmanager_pid.write(os.getpid())
    cluster.add(PROCESSOR, "transaction-processor", "RUNNING", 0)
    cluster.add(DETECTOR, "fraud-detector", "RESTARTING", 7)
    yield cluster
    server.shutdown()
    get_settings.cache_clear()


def test_state_and_health_see_only_the_specs_own_job(fake: FakeCluster) -> None:
    settings = get_settings()
    processor, detector, aggregator = (spec_for(n) for n in ("transaction-processor", "fraud-detector",
                                                             "realtime-aggregator"))
    assert flink_local_rest.job_state(processor, settings) == "RUNNING"
    assert flink_local_rest.job_state(detector, settings) == "RESTARTING"
    assert flink_local_rest.job_state(aggregator, settings) == "NOT_DEPLOYED"  # the cluster runs other jobs only
    assert flink_local_rest.current_job_id(processor, settings) == PROCESSOR
    assert flink_local_rest.current_job_id(detector, settings) == DETECTOR
    assert flink_local_rest.current_job_id(aggregator, settings) is None
    looping = health.job_health("fraud_detector", settings, stable_window_s=0)
    assert looping.job_id == DETECTOR and looping.restarts == 7 and not looping.healthy
    assert flink_health.needs_redeploy(looping)
    fine = health.job_health("transaction_processor", settings, stable_window_s=0)
    assert fine.job_id == PROCESSOR and fine.restarts == 0 and fine.healthy, fine.reason
    assert health.job_health("realtime_aggregator", settings).state == flink_health.NOT_DEPLOYED


def test_cancel_refuses_another_specs_job(fake: FakeCluster) -> None:
    with pytest.raises(flink_local_config.FlinkJobError, match="not fraud-detector's job"):
        flink_local_rest.cancel_job(spec_for("fraud-detector"), get_settings(), PROCESSOR, timeout_s=5)
    assert fake.cancelled == [] and fake.jobs[PROCESSOR]["state"] == "RUNNING"


def test_redeploying_one_job_cancels_and_resubmits_only_it(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(flink_local_lifecycle, "stop_cluster", lambda *a, **k: calls.append("stop_cluster"))
    monkeypatch.setattr(flink_local_lifecycle, "start_cluster", lambda *a, **k: calls.append("start_cluster"))
    monkeypatch.setattr(flink_local_lifecycle, "submit", lambda spec, *a, **k: calls.append(f"submit {spec.name}"))
    flink_local_lifecycle.redeploy(spec_for("fraud-detector"), get_settings(), DETECTOR, "restart loop")
    assert fake.cancelled == [DETECTOR] and calls == ["submit fraud-detector"]
    assert fake.jobs[PROCESSOR]["state"] == "RUNNING"


def test_stop_cancels_the_job_and_stops_the_cluster_with_the_last_one(fake: FakeCluster,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(flink_local_lifecycle, "stop_cluster", lambda spec, s: stopped.append(spec.name) or True)
    settings = get_settings()
    assert flink_local_lifecycle.stop(spec_for("fraud-detector"), settings) is True
    assert fake.cancelled == [DETECTOR] and stopped == []  # the processor still runs on the cluster
    assert flink_local_lifecycle.stop(spec_for("transaction-processor"), settings) is True
    assert fake.cancelled == [DETECTOR, PROCESSOR] and stopped == ["transaction-processor"]


def test_the_cluster_lock_lets_one_caller_in_at_a_time(settings) -> None:
    paths = flink_local_config.layout(load_all()["fraud-detector"], settings)
    inside: list[int] = []
    overlap: list[bool] = []

    def worker() -> None:
        with flink_local_lifecycle.cluster_lock(paths):
            inside.append(1)
            overlap.append(len(inside) > 1)
            time.sleep(0.2)
            inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [False, False, False]


def test_concurrent_deploys_start_the_cluster_once(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three deploy tasks at once: one spawns the JobManager and TaskManager, the others find them."""
    alive: dict[str, int] = {}
    spawned: list[str] = []

    class Pid:
        def __init__(self, role: str) -> None:
            self.role = role

        def alive_pid(self) -> int | None:
            return alive.get(self.role)

    def fake_spawn(name: str, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.2)  # a slow start: the others must wait, not start their own
        spawned.append(name)
        alive[name.rsplit("-", 1)[1]] = 1

    real_layout = flink_local_lifecycle.layout

    def fake_layout(spec: Any, s: Any) -> Any:
        import dataclasses

        return dataclasses.replace(real_layout(spec, s), jobmanager_pid=Pid("jobmanager"),
                                   taskmanager_pid=Pid("taskmanager"))

    monkeypatch.setattr(flink_local_lifecycle, "layout", fake_layout)
    monkeypatch.setattr(flink_local_lifecycle, "spawn", fake_spawn)
    monkeypatch.setattr(flink_local_lifecycle, "prepare_cluster_dir", lambda *a: None)
    monkeypatch.setattr(flink_local_lifecycle, "pyflink_home", lambda _s: Path("/pyflink"))
    monkeypatch.setattr(flink_local_lifecycle, "cluster_process_env", lambda *a: {})
    monkeypatch.setattr(flink_local_lifecycle, "cluster_ready", lambda *a: len(alive) == 2)
    specs = [load_all()[name] for name in JOBS]
    threads = [threading.Thread(target=flink_local_lifecycle.start_cluster, args=(spec, settings, 5)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spawned == ["flink-pipeline-jobmanager", "flink-pipeline-taskmanager"]


def test_test_stack_reserves_the_shared_clusters_ports() -> None:
    import random

    from tests import stack_isolation

    singles, base = stack_isolation.pick_ports(3, random.Random(3))
    assert stack_isolation.FLINK_CLUSTERS == 1 and base not in singles and base + 1000 not in singles
    assert load_spec(flink_jobs()[0].spec_path).name in JOBS


# ---- the state backend a resubmission restores with (ADR 0012's RocksDB -> HashMap switch) -------------
@pytest.mark.parametrize(("spec_backend", "recorded", "overrides"), [
    ("hashmap", None, {"state.backend.type": "rocksdb", "state.backend.incremental": "true"}),  # older job file
    ("hashmap", "rocksdb", {"state.backend.type": "rocksdb", "state.backend.incremental": "true"}),
    ("hashmap", "hashmap", {}),
    ("hashmap", "HashMap", {}),
    ("rocksdb", None, {}),
    ("rocksdb", "hashmap", {"state.backend.type": "hashmap"}),
])
def test_a_checkpoint_is_restored_with_the_backend_that_wrote_it(spec_backend: str, recorded: str | None,
                                                                 overrides: dict[str, str]) -> None:
    base = load_all()["fraud-detector"]
    spec = dataclasses.replace(base, flink_configuration={**base.flink_configuration,
                                                          "state.backend.type": spec_backend})
    assert flink_local_config.restore_backend_overrides(spec, recorded) == overrides


class _Completed:
    returncode = 0
    stdout = b"Job has been submitted with JobID " + b"c" * 32 + b"\n"


@pytest.mark.parametrize("savepoint", [False, True])
def test_submit_writes_and_records_the_backend_of_the_state_it_restores(settings, monkeypatch: pytest.MonkeyPatch,
                                                                        savepoint: bool) -> None:
    spec = load_all()["fraud-detector"]
    assert flink_local_config.state_backend(spec) == "hashmap"
    paths = flink_local_config.layout(spec, settings)
    checkpoint = paths.checkpoints_dir / ("d" * 32) / "chk-7"
    checkpoint.mkdir(parents=True)
    (checkpoint / "_metadata").write_bytes(b"x")
    paths.job_file.parent.mkdir(parents=True, exist_ok=True)
    paths.job_file.write_text(json.dumps({"job_id": "d" * 32, "submitted_at": 1.0}))  # a job file of before
    commands: list[list[str]] = []
    monkeypatch.setattr(flink_local_lifecycle.subprocess, "run",
                        lambda cmd, **kwargs: commands.append(cmd) or _Completed())
    restore_from = paths.savepoints_dir / "savepoint-1" if savepoint else None
    assert flink_local_lifecycle.submit(spec, settings, restore_from=restore_from) == "c" * 32
    written = yaml.safe_load((paths.conf_dir / "config.yaml").read_text())
    expected = "hashmap" if savepoint else "rocksdb"  # a canonical savepoint restores into any backend
    assert written["state.backend.type"] == expected
    assert json.loads(paths.job_file.read_text())["state_backend"] == expected
    assert commands[0][commands[0].index("--fromSavepoint") + 1] == str(restore_from or checkpoint)


@pytest.mark.parametrize("stopped", [False, True])
def test_a_failed_backend_switch_leaves_a_running_job_running(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch,
                                                              stopped: bool) -> None:
    """deploy() of a RUNNING job whose job file predates the backend field tries the switch; a savepoint
    that fails while the job keeps running is a warning (the job runs on as it was), not a failed deploy;
    a job the attempt did stop is an error."""
    settings = get_settings()
    spec = spec_for("transaction-processor")
    paths = flink_local_config.layout(spec, settings)
    paths.taskmanager_pid.write(os.getpid())
    monkeypatch.setattr(flink_local_lifecycle, "start_cluster", lambda *a, **k: paths)
    tried: list[str] = []

    def failing_switch(spec_, settings_, job_id, **kwargs):  # type: ignore[no-untyped-def]
        tried.append(job_id)
        if stopped:
            fake.jobs[job_id]["state"] = "FINISHED"
        raise flink_local_config.FlinkJobError("the savepoint failed")

    monkeypatch.setattr(flink_local_lifecycle, "switch_state_backend", failing_switch)
    if stopped:
        with pytest.raises(flink_local_config.FlinkJobError, match="savepoint failed"):
            flink_local_lifecycle.deploy(spec, settings, timeout_s=10)
    else:
        handle = flink_local_lifecycle.deploy(spec, settings, timeout_s=10)
        assert handle.job_id == PROCESSOR and handle.state == "RUNNING"
    assert tried == [PROCESSOR]
