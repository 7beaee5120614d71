"""The FlinkDeployment YAMLs are the single source of truth: loading them, and proving the local
runtime's configuration, command line and env come from them (only documented overrides differ)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from streamflow import flink_spec
from streamflow.catalog import flink_jobs
from streamflow.flink_spec import SpecError, load_all, load_spec
from streamflow.runtime import flink_local_config, flink_local_lifecycle
from streamflow.settings import load_settings

JOBS = tuple(job.name for job in flink_jobs())


@pytest.fixture()
def settings(tmp_path: Path):
    return load_settings(state_dir=tmp_path / "state", postgres_password="pw-from-settings",  # pragma: allowlist secret
                         kafka_bootstrap_servers="127.0.0.1:59999")


@pytest.fixture()
def spec_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flink"
    shutil.copytree(flink_spec.SPEC_DIR, target)
    return target


def test_every_job_has_a_valid_flinkdeployment():
    specs = load_all()
    assert set(JOBS) <= set(specs)
    for name in JOBS:
        spec = specs[name]
        assert spec.flink_version == "v1_20"
        assert spec.namespace == "streamflow-processing"
        assert spec.image.startswith("streamflow/flink:")
        assert spec.entry_class == flink_spec.PYTHON_DRIVER
        assert spec.python_module == f"flink_app.jobs.{name.replace('-', '_')}"
        assert spec.kafka_group_id == f"streamflow-{name}"  # what benchmarks and fault tests watch
        assert spec.upgrade_mode == "savepoint"
        conf = spec.flink_configuration
        assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
        assert conf["state.backend.type"] == "hashmap"
        assert conf["restart-strategy.type"] == "exponential-delay"
        assert conf["python.execution-mode"] == "thread"
        assert conf["python.executable"] == "/opt/venv/bin/python"
        assert {v.name for v in spec.env} >= {"KAFKA_BOOTSTRAP_SERVERS", "WAREHOUSE_JDBC_URL", "WAREHOUSE_PASSWORD"}
        password = next(v for v in spec.env if v.name == "WAREHOUSE_PASSWORD")
        assert password.from_secret and password.value is None


def test_security_context_drops_all_capabilities():
    for name in JOBS:
        pod = load_all()[name].raw["spec"]["podTemplate"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_jar_uri_names_the_flink_python_jar_of_the_installed_pyflink():
    settings = load_settings()
    try:
        home = flink_local_config.pyflink_home(settings)
    except flink_local_config.FlinkJobError:
        pytest.skip("flink venv not set up")
    jars = {p.name for p in (home / "opt").glob("flink-python-*.jar")}
    for spec in load_all().values():
        assert Path(spec.jar_uri.removeprefix("local://")).name in jars


def test_job_args_exclude_driver_options():
    spec = load_all()["fraud-detector"]
    assert spec.job_args[0] == "--source-topic"
    assert "-pym" not in spec.job_args


def test_missing_field_is_reported_with_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    document = yaml.safe_load((flink_spec.SPEC_DIR / "fraud-detector.yaml").read_text())
    del document["spec"]["job"]["parallelism"]
    bad.write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError, match=r"bad\.yaml.*parallelism"):
        load_spec(bad)


def test_local_configuration_overrides_only_the_documented_keys(settings):
    for spec in load_all().values():
        local = flink_local_config.local_flink_configuration(spec, settings)
        changed = {k for k in local if spec.flink_configuration.get(k) != local[k]}
        assert changed <= set(flink_local_config.LOCAL_OVERRIDES), changed - set(flink_local_config.LOCAL_OVERRIDES)
        for key, value in spec.flink_configuration.items():
            if key not in flink_local_config.LOCAL_OVERRIDES:
                assert local[key] == value


def test_local_checkpoint_interval_and_paths_come_from_settings(settings):
    spec = load_all()["fraud-detector"]
    local = flink_local_config.local_flink_configuration(spec, settings)
    assert spec.flink_configuration["execution.checkpointing.interval"] == "60s"
    assert local["execution.checkpointing.interval"] == f"{settings.flink_checkpoint_interval_s}s"
    assert local["state.checkpoints.dir"].startswith((settings.state_dir / "flink").as_uri())
    assert local["python.executable"] == str(settings.venv_python("flink"))
    assert local["rest.port"] == str(settings.flink_rest_port_base)  # the shared cluster (ADR 0013)


def test_env_overrides_resolve_endpoints_and_secrets_from_settings(settings):
    spec = load_all()["transaction-processor"]
    env = flink_local_config.local_job_env(spec, settings)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:59999"
    assert env["WAREHOUSE_JDBC_URL"] == settings.warehouse_jdbc_url
    assert env["WAREHOUSE_PASSWORD"] == "pw-from-settings"  # pragma: allowlist secret
    assert env["PYTHONPATH"] == str(settings.repo_root)


def test_a_change_in_the_yaml_shows_in_the_local_run(settings, spec_dir: Path, monkeypatch):
    """Edit parallelism, an env var, a Flink option and a job arg in the YAML: all reach the local run."""
    monkeypatch.setattr(flink_local_config, "pyflink_home", lambda _s: Path("/pyflink"))
    path = spec_dir / "fraud-detector.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"]["job"]["parallelism"] = 3
    document["spec"]["flinkConfiguration"]["state.backend.incremental"] = "false"
    document["spec"]["podTemplate"]["spec"]["containers"][0]["env"].append({"name": "FRAUD_DEBUG", "value": "yes"})
    args = document["spec"]["job"]["args"]
    args[args.index("--alert-threshold") + 1] = "0.85"
    path.write_text(yaml.safe_dump(document))

    spec = load_all(spec_dir)["fraud-detector"]
    command = flink_local_config.submit_command(spec, settings)
    assert command[command.index("--parallelism") + 1] == "3"
    assert command[command.index("--alert-threshold") + 1] == "0.85"
    assert command[command.index("-pyclientexec") + 1] == str(settings.venv_python("flink"))
    assert command[command.index("--model-dir") + 1] == str(settings.repo_root / "flink_app/model/artifacts")
    local = flink_local_config.local_flink_configuration(spec, settings)
    assert local["state.backend.incremental"] == "false"
    # the shared cluster's slots: the sum of the catalog jobs' parallelism, this one's now 3
    others = sum(s.parallelism for n, s in load_all().items() if n != "fraud-detector")
    assert local["taskmanager.numberOfTaskSlots"] == str(3 + others)
    assert flink_local_config.local_job_env(spec, settings)["FRAUD_DEBUG"] == "yes"


def test_secret_without_local_value_is_refused(settings, spec_dir: Path):
    path = spec_dir / "fraud-detector.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"]["podTemplate"]["spec"]["containers"][0]["env"].append(
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}})
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(flink_local_config.FlinkJobError, match="API_TOKEN"):
        flink_local_config.local_job_env(load_all(spec_dir)["fraud-detector"], settings)


def test_config_yaml_is_flat_and_keeps_the_base_java_options(settings):
    spec = load_all()["realtime-aggregator"]
    own = dict(spec.flink_configuration)
    own.pop("env.java.opts.all")
    bare = dataclasses.replace(spec, flink_configuration=own)   # a spec without its own Java options
    base = flink_local_config.flatten_yaml({"env": {"java": {"opts": {"all": "--add-opens=a=b"}}},
                                            "rest": {"port": 8081}})
    text = flink_local_config.render_config_yaml(flink_local_config.local_flink_configuration(bare, settings), base)
    parsed = yaml.safe_load(text)
    assert parsed["env.java.opts.all"] == "--add-opens=a=b"
    assert parsed["rest.port"] == str(settings.flink_rest_port_base)


def test_the_specs_java_options_are_pyflinks_own(settings):
    """The specs carry Java 17's options because the operator replaces the image's flink-conf; locally
    they must be exactly what PyFlink's own conf/config.yaml gives the cluster (no change there)."""
    shipped = yaml.safe_load((flink_local_config.pyflink_home(settings) / "conf" / "config.yaml").read_text())
    expected = shipped["env"]["java"]["opts"]["all"]
    for spec in load_all().values():
        assert spec.flink_configuration["env.java.opts.all"] == expected, spec.name


def test_the_catalog_jobs_share_one_clusters_ports(settings):
    specs = [load_all()[name] for name in JOBS]
    rest = {flink_local_config.local_flink_configuration(s, settings)["rest.port"] for s in specs}
    rpc = {flink_local_config.local_flink_configuration(s, settings)["jobmanager.rpc.port"] for s in specs}
    assert rest == {str(settings.flink_rest_port_base)} and rpc == {str(settings.flink_rest_port_base + 1000)}


def test_memory_quantities_are_converted():
    assert flink_local_config._memory("2Gi") == "2g"
    assert flink_local_config._memory("1536Mi") == "1536m"
    assert flink_local_config._memory("1728m") == "1728m"


def test_latest_checkpoint_and_reset_state(settings, monkeypatch):
    monkeypatch.setattr(flink_local_config, "pyflink_home", lambda _s: Path("/pyflink"))
    spec = load_all()["transaction-processor"]
    paths = flink_local_config.layout(spec, settings)
    assert flink_local_lifecycle.latest_checkpoint(spec, settings) is None
    for job, number in (("aaa", 3), ("bbb", 7)):
        chk = paths.checkpoints_dir / job / f"chk-{number}"
        chk.mkdir(parents=True)
        (chk / "_metadata").write_bytes(b"x")
    (paths.checkpoints_dir / "ccc" / "chk-9").mkdir(parents=True)  # incomplete: no _metadata
    assert flink_local_lifecycle.latest_checkpoint(spec, settings) == paths.checkpoints_dir / "bbb" / "chk-7"
    command = flink_local_config.submit_command(spec, settings, flink_local_lifecycle.latest_checkpoint(spec, settings))
    assert command[command.index("--fromSavepoint") + 1].endswith("bbb/chk-7")
    assert flink_local_lifecycle.stop(spec, settings, reset_state=True) is False  # nothing was running
    assert flink_local_lifecycle.latest_checkpoint(spec, settings) is None
