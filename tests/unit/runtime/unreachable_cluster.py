"""A kubeconfig for unit tests that build Kubernetes requests: the providers read one when an operator
or hook is built, but nothing ever connects to its (unresolvable) server."""

from __future__ import annotations

import json
from pathlib import Path


def write_kubeconfig(folder: Path) -> Path:
    path = folder / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": "https://kube.invalid:6443"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        "users": [{"name": "t", "user": {"token": "t"}}]}))
    return path
