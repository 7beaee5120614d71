"""The rendered overlay against the API server's own validation (built-in types, the operators' CRD
schemas, admission), via ``kubectl apply --server-side --dry-run=server``: a schema check proves a
manifest is well-formed; only this proves Kubernetes accepts it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamflow.generator_spec import POD_TEMPLATE
from tests.k8s_testenv import PLATFORM_CRDS, ControlPlane, crd_documents

pytestmark = pytest.mark.integration


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return str(doc.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _namespaces(docs: list[dict[str, Any]]) -> set[str]:
    names = {str(d["metadata"]["name"]) for d in docs if d.get("kind") == "Namespace"}
    return names | {str(d["metadata"]["namespace"]) for d in docs if (d.get("metadata") or {}).get("namespace")}


def test_every_object_of_the_overlay_passes_server_side_dry_run(
    kube_api: ControlPlane, rendered_overlay: list[dict[str, Any]], ensure_ns: Callable[[str], str],
    crd_files: list[Path],
) -> None:
    # The operators' CRDs for every custom kind the overlay uses (beyond the base set).
    by_kind = {(d["spec"]["group"], d["spec"]["names"]["kind"]): name
               for name, d in crd_documents(crd_files).items()}
    used = {(str(d["apiVersion"]).split("/")[0], str(d["kind"])) for d in rendered_overlay
            if "." in str(d["apiVersion"]).split("/")[0] and "/" in str(d["apiVersion"])}
    custom = {by_kind[k] for k in used if k in by_kind}
    if custom - PLATFORM_CRDS:
        kube_api.install_crds(crd_files, only=custom - PLATFORM_CRDS)
    # Namespaces must exist for a dry run of what goes into them (a dry run creates nothing).
    for namespace in sorted(_namespaces(rendered_overlay)):
        ensure_ns(namespace)
    stream = yaml.safe_dump_all(rendered_overlay, sort_keys=False)
    proc = kube_api.kubectl("apply", "--server-side", "--dry-run=server", "--field-manager=streamflow-ci",
                            "--force-conflicts", "-f", "-", input_text=stream, check=False)
    assert proc.returncode == 0, f"the API server rejected the overlay:\n{proc.stderr}"
    applied = [line for line in proc.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(rendered_overlay), proc.stdout


def test_the_generator_pods_service_account_is_in_the_overlay(rendered_overlay: list[dict[str, Any]]) -> None:
    """Admission refuses a pod whose service account is missing (see test_generator_pod). The
    FlinkDeployments' ``flink`` account is created by the Flink operator's chart, not the overlay."""
    defined = {(ns, name) for kind, ns, name in map(_key, rendered_overlay) if kind == "ServiceAccount"}
    pod = yaml.safe_load(POD_TEMPLATE.read_text())
    assert (pod["metadata"]["namespace"], pod["spec"]["serviceAccountName"]) in defined, sorted(defined)
