"""k8s/gitops/streamflow.yaml: the Argo CD AppProject + Application for the single-node overlay.

Validated against Argo CD's own CRDs (pinned ARGOCD_VERSION, strict: an unknown field is an error), and
against what it deploys: the Application's source path is the overlay, and the project lets it create
exactly what the rendered overlay holds (every namespace it uses, every cluster-scoped kind), no more.
The real API server accepts both objects in `make test-k8s` (server-side dry run on the cluster).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from k8s_static import K8S, REPO, Doc, validate_custom

GITOPS = K8S / "gitops" / "streamflow.yaml"
IN_CLUSTER = "https://kubernetes.default.svc"


def _docs() -> dict[str, Doc]:
    docs = [d for d in yaml.safe_load_all(GITOPS.read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_both_objects_match_argo_cds_crds(crds: dict[tuple[str, str], Doc]) -> None:
    docs = _docs()
    assert set(docs) == {"AppProject", "Application"}
    assert [e for d in docs.values() for e in validate_custom(d, crds)] == []


@pytest.mark.parametrize(("kind", "mutate", "expected"), [
    ("Application", lambda d: d["spec"]["syncPolicy"]["automated"].__setitem__("prunee", True), "prunee"),
    ("Application", lambda d: d["spec"].pop("destination"), "destination"),
    ("AppProject", lambda d: d["spec"]["destinations"][0].__setitem__("namespace", 7), "is not of type 'string'"),
])
def test_the_schema_check_has_teeth(crds: dict[tuple[str, str], Doc], kind: str, mutate: Any, expected: str) -> None:
    doc = copy.deepcopy(_docs()[kind])
    mutate(doc)
    assert any(expected in e for e in validate_custom(doc, crds)), validate_custom(doc, crds)


def test_the_application_deploys_the_overlay_within_its_project() -> None:
    docs = _docs()
    app, project = docs["Application"]["spec"], docs["AppProject"]
    assert app["project"] == project["metadata"]["name"]
    assert (REPO / app["source"]["path"] / "kustomization.yaml").is_file()
    assert app["source"]["path"] == "k8s/overlays/single-node"
    assert app["source"]["repoURL"] in project["spec"]["sourceRepos"]
    assert app["destination"]["server"] == IN_CLUSTER


def test_the_project_allows_exactly_what_the_overlay_creates(rendered: list[Doc]) -> None:
    project = _docs()["AppProject"]["spec"]
    allowed = {d["namespace"] for d in project["destinations"] if d["server"] == IN_CLUSTER}
    used = {d["metadata"]["namespace"] for d in rendered if d["metadata"].get("namespace")}
    used |= {d["metadata"]["name"] for d in rendered if d["kind"] == "Namespace"}
    assert allowed == used
    cluster_scoped = {(d["apiVersion"].rpartition("/")[0], d["kind"]) for d in rendered
                      if not d["metadata"].get("namespace")}
    whitelisted = {(w["group"], w["kind"]) for w in project.get("clusterResourceWhitelist", [])}
    assert cluster_scoped == whitelisted
