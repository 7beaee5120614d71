"""The two runtimes behind one interface: task builders for Flink jobs and the generator.

A DAG asks ``runtime_for(settings)`` for its tasks; ``STREAMFLOW_RUNTIME`` picks the implementation
(local processes or Kubernetes resources) and the DAG file never changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from streamflow.settings import Runtime, Settings

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

FLINK_SPECS_DIR = Path(__file__).resolve().parent.parent.parent / "k8s" / "base" / "flink"
FLINK_JOBS = ("transaction_processor", "fraud_detector", "realtime_aggregator")


def flink_spec_path(job: str) -> Path:
    """k8s/base/flink/<job-with-dashes>.yaml: the FlinkDeployment both runtimes read."""
    return FLINK_SPECS_DIR / f"{job.replace('_', '-')}.yaml"


class PipelineRuntime(Protocol):
    def flink_job(self, job: str) -> tuple[BaseOperator, BaseOperator]:
        """(deploy, wait-until-running) tasks for one Flink job."""

    def generator(self) -> BaseOperator:
        """A bounded generator run whose logs land in the task log."""


def runtime_for(settings: Settings) -> PipelineRuntime:
    if settings.runtime is Runtime.KUBERNETES:
        from streamflow.runtime.kubernetes import KubernetesRuntime

        return KubernetesRuntime(settings)
    from streamflow.runtime.local import LocalRuntime

    return LocalRuntime(settings)
