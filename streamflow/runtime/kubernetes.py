"""Kubernetes runtime: FlinkDeployments through the Flink Kubernetes Operator, the generator as a pod.

Both are applied from the specs in ``k8s/base`` - or, with ``STREAMFLOW_K8S_SPEC_DIR``, from the files of
the same names in that folder (an overlay rendered for the user's cluster: images, endpoints, resources) -
with one change: every topic is the one the settings name (:func:`streamflow.catalog.bind_job_topics`,
:func:`streamflow.generator_spec.bound_pod_template`), as in the local runtime, so ``STREAMFLOW_TOPIC_*``
renames a topic for its producers and consumers alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import BaseOperator

from streamflow import catalog
from streamflow.flink_health import default_stable_window_s
from streamflow.flink_spec import parse_spec
from streamflow.generator_spec import POD_TEMPLATE, bound_pod_template, bounded_run_args, load_generator_spec
from streamflow.kubernetes_access import connection_kwargs
from streamflow.operators.flink_kubernetes import FlinkDeploymentApplyOperator, FlinkDeploymentRunningSensor
from streamflow.settings import ENV_PREFIX, Settings

K8S_BASE = POD_TEMPLATE.parent.parent  # k8s/base: what STREAMFLOW_K8S_SPEC_DIR mirrors


def spec_file(settings: Settings, base_file: Path) -> Path:
    """The manifest the runtime applies for ``base_file`` (a file under k8s/base): the file at the same
    relative path in ``STREAMFLOW_K8S_SPEC_DIR`` when that is set (it must then exist: a half-copied
    overlay must not silently deploy the base's images and endpoints), else ``base_file`` itself."""
    if not settings.k8s_spec_dir:
        return base_file
    path = Path(settings.k8s_spec_dir) / base_file.relative_to(K8S_BASE)
    if not path.is_file():
        raise FileNotFoundError(f"{ENV_PREFIX}K8S_SPEC_DIR={settings.k8s_spec_dir}: {path} is missing; the folder must "
                                f"hold every manifest the runtime applies, laid out like k8s/base "
                                f"({base_file.relative_to(K8S_BASE)})")
    return path


def read_flink_deployment(path: Path) -> dict[str, Any]:
    resource = yaml.safe_load(path.read_text())
    if not isinstance(resource, dict) or resource.get("kind") != "FlinkDeployment":
        raise ValueError(f"{path} does not hold a FlinkDeployment")
    return resource


def render_flink_deployment(path: Path, settings: Settings) -> dict[str, Any]:
    """The FlinkDeployment as applied: the spec with its topic arguments bound to the settings."""
    resource = read_flink_deployment(path)
    job = (resource.get("spec") or {}).get("job") or {}
    if job.get("args"):
        job["args"] = catalog.bind_job_topics([str(a) for a in job["args"]], settings, where=path)
    return resource


class KubernetesRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def flink_job(self, job: str) -> tuple[BaseOperator, BaseOperator]:
        path = spec_file(self.settings, catalog.flink_job(job).spec_path)
        resource = render_flink_deployment(path, self.settings)
        metadata = resource["metadata"]
        assert isinstance(metadata, dict)
        name = str(metadata["name"])
        namespace = str(metadata.get("namespace") or self.settings.k8s_namespace_processing)

        deploy = FlinkDeploymentApplyOperator(
            task_id=f"deploy_{job}",
            application_file=json.dumps(resource),  # JSON string: not treated as a template file path
            namespace=namespace,
            **connection_kwargs(self.settings),
        )
        wait = FlinkDeploymentRunningSensor(
            task_id=f"wait_{job}_running", name=name, namespace=namespace, poke_interval=10, timeout=900,
            mode="reschedule", job=job, deploy_task_id=deploy.task_id,
            # healthy = stable for two of the spec's checkpoint intervals (ADR 0010)
            stable_window_s=default_stable_window_s(parse_spec(resource, path), self.settings),
            **connection_kwargs(self.settings),
        )
        deploy >> wait
        return deploy, wait

    def generator(self) -> BaseOperator:
        path = spec_file(self.settings, POD_TEMPLATE)
        spec = load_generator_spec(path)
        return KubernetesPodOperator(
            task_id="run_generator",
            name="streamflow-generator",
            namespace=spec.namespace or self.settings.k8s_namespace_processing,
            pod_template_dict=bound_pod_template(self.settings, path),
            arguments=[*spec.args, *bounded_run_args(self.settings)],
            get_logs=True,
            on_finish_action="delete_succeeded_pod",
            startup_timeout_seconds=300,
            **connection_kwargs(self.settings),
        )
