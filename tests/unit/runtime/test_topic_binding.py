"""STREAMFLOW_TOPIC_* renames a topic for every producer and consumer, in both runtimes.

The specs (k8s/base/flink/*.yaml, the generator pod template) write the default topic names; the
settings decide which topics exist (``provision``). These tests rename all four topics and follow
them into every Flink job argument and the generator's configuration, locally and on Kubernetes,
down to the generator's own option parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG

from generator.config import parse_config
from streamflow import catalog
from streamflow.flink_spec import SpecError, load_spec
from streamflow.generator_spec import bounded_run_args, load_generator_spec, local_argv
from streamflow.runtime import flink_local_config, runtime_for
from streamflow.runtime.kubernetes import render_flink_deployment
from streamflow.settings import Settings, load_settings
from tests.unit.runtime.unreachable_cluster import write_kubeconfig

REPO = Path(__file__).resolve().parents[3]
RENAMED = {"topic_transactions": "renamed.tx", "topic_alerts": "renamed.alerts",
           "topic_metrics": "renamed.metrics", "topic_dlq": "renamed.dlq"}
DEFAULTS = {field: str(info.default) for field, info in Settings.model_fields.items() if field in RENAMED}


@pytest.fixture()
def local(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, postgres_password="x", **RENAMED)


@pytest.fixture()
def kubernetes(tmp_path: Path) -> Settings:
    kubeconfig = write_kubeconfig(tmp_path)  # building the pod request reads one; nothing connects to it
    return load_settings(state_dir=tmp_path, runtime="kubernetes", kafka_bootstrap_servers="kafka.invalid:9092",
                         postgres_password="x", k8s_in_cluster=False, k8s_config_file=str(kubeconfig), **RENAMED)


def _topic_values(args: list[str]) -> dict[str, str]:
    """``{"--source-topic": value, ...}`` of a job's arguments."""
    return {arg: args[i + 1] for i, arg in enumerate(args[:-1]) if arg.startswith("--") and arg.endswith("-topic")}


def _expected(args: list[str]) -> dict[str, str]:
    return {option: RENAMED[catalog.JOB_TOPIC_OPTIONS[option]] for option in _topic_values(args)}


def test_the_defaults_differ_from_the_renamed_topics() -> None:
    """Otherwise every test below would pass without binding anything."""
    assert set(DEFAULTS) == set(RENAMED) == set(catalog.JOB_TOPIC_OPTIONS.values())
    assert not set(DEFAULTS.values()) & set(RENAMED.values())


def test_every_topic_option_of_the_jobs_is_bound_to_a_setting() -> None:
    """The options the jobs' parsers define (flink_app) are exactly the ones the catalog binds."""
    sources = [*REPO.glob("flink_app/jobs/*.py"), REPO / "flink_app" / "config.py"]
    defined = {m for path in sources for m in re.findall(r"add_argument\(\s*\"(--[a-z-]+-topic)\"", path.read_text())}
    assert defined == set(catalog.JOB_TOPIC_OPTIONS)


def test_local_runtime_passes_the_renamed_topics_to_every_job(local: Settings) -> None:
    seen: set[str] = set()
    for job in catalog.flink_jobs():
        spec = load_spec(job.spec_path)
        written = _topic_values(list(spec.args))
        assert written, f"{job.name} names no topic"
        assert set(written.values()) <= set(DEFAULTS.values())  # the spec still writes the defaults
        args = flink_local_config.local_job_args(spec, local)
        assert _topic_values(args) == _expected(list(spec.args)), job.name
        assert not set(args) & set(DEFAULTS.values()), job.name
        seen |= set(_topic_values(args).values())
    assert seen == set(local.topics)  # every topic provision creates has a job writing or reading it


def test_kubernetes_runtime_applies_the_renamed_topics_to_every_flinkdeployment(kubernetes: Settings) -> None:
    runtime = runtime_for(kubernetes)
    seen: set[str] = set()
    for job in catalog.flink_jobs():
        with DAG(dag_id=f"topics_{job.key}", schedule=None):
            deploy, _ = runtime.flink_job(job.key)
        applied: dict[str, Any] = json.loads(str(deploy.application_file))  # type: ignore[attr-defined]
        args = [str(a) for a in applied["spec"]["job"]["args"]]
        written = list(load_spec(job.spec_path).args)
        assert _topic_values(args) == _expected(written), job.name
        assert not set(args) & set(DEFAULTS.values()), job.name
        # nothing else of the spec changes
        assert [a for a in args if a not in RENAMED.values()] == [a for a in written if a not in DEFAULTS.values()]
        seen |= set(_topic_values(args).values())
    assert seen == set(kubernetes.topics)


def test_default_settings_apply_the_specs_unchanged(tmp_path: Path) -> None:
    # the default names, explicitly: the suite's own environment renames every topic (tests/stack_isolation)
    defaults = {f: Settings.model_fields[f].default for f in Settings.model_fields if f.startswith("topic_")}
    settings = load_settings(state_dir=tmp_path, postgres_password="x", **defaults)
    for job in catalog.flink_jobs():
        rendered = render_flink_deployment(job.spec_path, settings)
        assert rendered["spec"]["job"]["args"] == list(load_spec(job.spec_path).args)


def test_local_generator_produces_to_the_renamed_topic(local: Settings) -> None:
    argv, env = local_argv(load_generator_spec().with_args(*bounded_run_args(local)), local)
    assert env["GENERATOR_TOPIC"] == "renamed.tx"
    config = parse_config(argv[3:], environ=env)  # argv: python -m generator <args>
    assert config.topic == "renamed.tx"


def test_kubernetes_generator_pod_produces_to_the_renamed_topic(kubernetes: Settings) -> None:
    with DAG(dag_id="topics_generator", schedule=None):
        operator = runtime_for(kubernetes).generator()
    assert isinstance(operator, KubernetesPodOperator)
    pod = operator.build_pod_request_obj(context=None)  # the pod the operator would create
    container = pod.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert [e.name for e in container.env].count("GENERATOR_TOPIC") == 1
    assert env["GENERATOR_TOPIC"] == "renamed.tx"
    assert parse_config(container.args, environ=env).topic == "renamed.tx"


def test_a_topic_option_no_setting_names_fails(local: Settings) -> None:
    with pytest.raises(SpecError, match="--audit-topic names a topic but no setting does"):
        catalog.bind_job_topics(["--audit-topic", "audit"], local, where="spec.yaml")
    with pytest.raises(SpecError, match="--dlq-topic has no value"):
        catalog.bind_job_topics(["--group-id", "g", "--dlq-topic"], local)
    assert catalog.bind_job_topics(["--dlq-topic=dlq.errors", "--group-id", "g"], local) == [
        "--dlq-topic=renamed.dlq", "--group-id", "g"]
