"""The generator pod template (k8s/base/generator/pod-template.yaml) as the single source of truth.

On Kubernetes, KubernetesPodOperator launches the template with its topic env bound to the settings
(:func:`bound_pod_template`). The local runtime reads the same command, args and env and runs them as
a process; it binds the same topic env and replaces what is bound to the runtime: the interpreter
(the generator venv's python) and the Kafka address (from settings). A change to the template
therefore shows in both runtimes, and a renamed topic (``STREAMFLOW_TOPIC_TRANSACTIONS``) in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streamflow.catalog import bind_generator_env
from streamflow.settings import Settings

POD_TEMPLATE = Path(__file__).resolve().parent.parent / "k8s" / "base" / "generator" / "pod-template.yaml"
RUNTIME_BOUND_ENV = ("GENERATOR_BOOTSTRAP_SERVERS",)


@dataclass(frozen=True)
class GeneratorSpec:
    command: list[str]
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    image: str = ""
    namespace: str = ""

    def with_args(self, *extra: str) -> GeneratorSpec:
        return GeneratorSpec(self.command, [*self.args, *extra], dict(self.env), self.image, self.namespace)


def load_pod_template(path: Path = POD_TEMPLATE) -> dict[str, Any]:
    pod = yaml.safe_load(path.read_text())
    if not isinstance(pod, dict) or pod.get("kind") != "Pod" or not (pod.get("spec") or {}).get("containers"):
        raise ValueError(f"{path} does not hold a Pod with a container")
    return pod


def bound_pod_template(settings: Settings, path: Path = POD_TEMPLATE) -> dict[str, Any]:
    """The pod template as KubernetesPodOperator launches it: the first container's topic env vars
    set to the topics the settings name (added when the template lacks them)."""
    pod = load_pod_template(path)  # a fresh document: changed in place
    container = pod["spec"]["containers"][0]
    env = [dict(item) for item in container.get("env") or []]
    wanted = bind_generator_env({}, settings)
    for item in env:
        if item.get("name") in wanted:
            item.pop("valueFrom", None)
            item["value"] = wanted.pop(item["name"])
    env += [{"name": name, "value": value} for name, value in wanted.items()]
    container["env"] = env
    return pod


def load_generator_spec(path: Path = POD_TEMPLATE) -> GeneratorSpec:
    pod = load_pod_template(path)
    container = pod["spec"]["containers"][0]
    env = {item["name"]: str(item["value"]) for item in container.get("env", []) if "value" in item}
    return GeneratorSpec(
        command=list(container["command"]),
        args=[str(a) for a in container.get("args", [])],
        env=env,
        image=str(container["image"]),
        namespace=str(pod["metadata"].get("namespace", "")),
    )


def bounded_run_args(settings: Settings) -> list[str]:
    """Arguments the DAG adds for a bounded run (identical in both runtimes)."""
    return ["--total-events", str(settings.generator_events), "--seed", str(settings.generator_seed),
            "--events-per-second", str(settings.generator_events_per_second), "--backfill"]


def local_argv(spec: GeneratorSpec, settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The local process for a spec: same module/args/env, the settings' topic, local interpreter and
    Kafka address."""
    command = list(spec.command)
    if command and command[0].startswith("python"):
        command[0] = str(settings.venv_python("generator"))
    env = bind_generator_env(spec.env, settings)
    env["GENERATOR_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap
    return [*command, *spec.args], env
