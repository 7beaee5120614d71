"""The two runtimes behind one interface: task builders for Flink jobs and the generator.

A DAG asks ``runtime_for(settings)`` for its tasks; ``STREAMFLOW_RUNTIME`` picks the implementation
(local processes or Kubernetes resources) and the DAG file never changes. Which jobs there are comes
from :mod:`streamflow.catalog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from streamflow.settings import Runtime, Settings

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator


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

    return LocalRuntime()  # its tasks read the settings when they run (see LocalRuntime)
