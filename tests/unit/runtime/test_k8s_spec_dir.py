"""STREAMFLOW_K8S_SPEC_DIR: the Kubernetes runtime applies a user's rendered overlay instead of k8s/base.

The DAG's Kubernetes tasks must carry the folder's manifests (images, endpoints, resources of the
user's cluster), never silently fall back to the base's for a file the folder lacks, and the Airflow
processes the stack starts must see the same runtime settings as the command that started them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from airflow.sdk import DAG

from streamflow import catalog
from streamflow.generator_spec import POD_TEMPLATE
from streamflow.runtime import runtime_for
from streamflow.runtime.kubernetes import K8S_BASE, spec_file
from streamflow.settings import Settings, SettingsError, load_settings
from streamflow.stack.airflow import airflow_env
from tests.unit.runtime.unreachable_cluster import write_kubeconfig

OVERLAY_IMAGE = "registry.example/streamflow/flink:overlay"
OVERLAY_KAFKA = "198.18.0.1:59192"


def _overlay(tmp_path: Path) -> Path:
    """k8s/base's flink and generator manifests copied, each with one value changed."""
    root = tmp_path / "overlay"
    for job in catalog.flink_jobs():
        target = root / job.spec_path.relative_to(K8S_BASE)
        target.parent.mkdir(parents=True, exist_ok=True)
        resource = yaml.safe_load(job.spec_path.read_text())
        resource["spec"]["image"] = OVERLAY_IMAGE
        target.write_text(yaml.safe_dump(resource))
    pod = yaml.safe_load(POD_TEMPLATE.read_text())
    for env in pod["spec"]["containers"][0]["env"]:
        if env["name"] == "GENERATOR_BOOTSTRAP_SERVERS":
            env["value"] = OVERLAY_KAFKA
    target = root / POD_TEMPLATE.relative_to(K8S_BASE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(pod))
    return root


def _kubernetes(tmp_path: Path, spec_dir: Path | None) -> Settings:
    return load_settings(state_dir=tmp_path, runtime="kubernetes", kafka_bootstrap_servers="kafka.invalid:9092",
                         postgres_password="x", k8s_in_cluster=False, k8s_config_file=str(write_kubeconfig(tmp_path)),
                         k8s_spec_dir=str(spec_dir or ""))


def test_without_the_setting_the_base_manifests_are_applied(tmp_path: Path) -> None:
    settings = _kubernetes(tmp_path, None)
    for job in catalog.flink_jobs():
        assert spec_file(settings, job.spec_path) == job.spec_path
    assert spec_file(settings, POD_TEMPLATE) == POD_TEMPLATE


def test_the_dag_tasks_carry_the_folders_manifests(tmp_path: Path) -> None:
    settings = _kubernetes(tmp_path, _overlay(tmp_path))
    runtime = runtime_for(settings)
    with DAG("t", schedule=None):
        for job in catalog.flink_job_keys():
            deploy, _wait = runtime.flink_job(job)
            applied = json.loads(deploy.application_file)
            assert applied["spec"]["image"] == OVERLAY_IMAGE, job
        generator = runtime.generator()
    env = {e["name"]: e.get("value") for e in generator.pod_template_dict["spec"]["containers"][0]["env"]}
    assert env["GENERATOR_BOOTSTRAP_SERVERS"] == OVERLAY_KAFKA


@pytest.mark.parametrize("missing", ["flink", "generator"])
def test_a_folder_missing_a_manifest_fails_naming_the_setting_and_the_file(tmp_path: Path, missing: str) -> None:
    overlay = _overlay(tmp_path)
    shutil.rmtree(overlay / missing)
    runtime = runtime_for(_kubernetes(tmp_path, overlay))
    with DAG("t", schedule=None), pytest.raises(FileNotFoundError, match=r"STREAMFLOW_K8S_SPEC_DIR=.*missing"):
        if missing == "flink":
            runtime.flink_job(catalog.flink_job_keys()[0])
        else:
            runtime.generator()


def test_a_spec_dir_that_is_not_a_folder_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="STREAMFLOW_K8S_SPEC_DIR"):
        _kubernetes(tmp_path, tmp_path / "absent")


def test_airflow_processes_get_the_runtime_settings_of_the_command_that_starts_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in the command (not all from its environment) reach Airflow as the variables that
    set them, and those variables alone rebuild the same runtime in the Airflow process."""
    settings = _kubernetes(tmp_path, _overlay(tmp_path))
    env = airflow_env(settings)
    runtime_fields = ("runtime", "k8s_namespace_processing", "k8s_in_cluster", "k8s_config_file", "k8s_spec_dir",
                      "kafka_bootstrap_servers", "postgres_password")
    for name, value in env.items():
        if name.startswith("STREAMFLOW_"):
            monkeypatch.setenv(name, value)
    rebuilt = load_settings(state_dir=tmp_path)
    assert {f: getattr(rebuilt, f) for f in runtime_fields} == {f: getattr(settings, f) for f in runtime_fields}
    assert airflow_env(load_settings(state_dir=tmp_path, runtime="local"))["STREAMFLOW_RUNTIME"] == "local"
