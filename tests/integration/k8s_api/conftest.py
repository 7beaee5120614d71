"""A real Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1) for the kubernetes runtime.

``kube_api`` starts it once per session (tests/k8s_testenv.py) with the pinned Flink operator,
Strimzi and CloudNativePG CRDs installed. The binaries are built from the Go module proxy on first
use and cached (scripts/build_k8s_binaries.sh; scripts/setup.sh builds them ahead). If they cannot
be built or the control plane does not start, the fixture FAILS: a harness that silently skips would
report a green kubernetes runtime that was never exercised.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.k8s_testenv import PLATFORM_CRDS, ControlPlane, ControlPlaneError, ensure_binaries, ensure_crds

REPO_ROOT = Path(__file__).resolve().parents[3]
RENDER_SCRIPT = REPO_ROOT / "scripts" / "k8s_render.sh"


@pytest.fixture(scope="session")
def crd_files() -> list[Path]:
    """The pinned operators' CRD files (scripts/setup_k8s_tools.sh's cache)."""
    try:
        return ensure_crds()
    except (ControlPlaneError, OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"the operators' CRDs are unavailable: {error}", pytrace=False)


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory, crd_files: list[Path]) -> Iterator[ControlPlane]:
    """The running control plane: ``.kubeconfig`` (admin, system:masters), ``.url``, ``.kubectl()``."""
    started = time.monotonic()
    try:
        bin_dir = ensure_binaries()
        plane = ControlPlane(bin_dir, work_dir=tmp_path_factory.mktemp("kube-api")).start()
    except (ControlPlaneError, OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"the Kubernetes control plane is unavailable: {error}", pytrace=False)
    try:
        plane.install_crds(crd_files, only=PLATFORM_CRDS)
        print(f"\nkube-apiserver ready with CRDs in {time.monotonic() - started:.1f} s at {plane.url}")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api_client(kube_api: ControlPlane) -> client.ApiClient:
    """Admin client of the ``kubernetes`` package (what Airflow's KubernetesHook wraps)."""
    return config.new_client_from_config(config_file=str(kube_api.kubeconfig))


def ensure_namespace(api: client.ApiClient, name: str) -> str:
    """Create a namespace if missing. There is no namespace controller here, so tests never delete
    namespaces (they would stay Terminating): each test uses its own object names instead."""
    try:
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as error:
        if error.status != 409:
            raise
    return name


@pytest.fixture(scope="session")
def ensure_ns(api_client: client.ApiClient) -> Callable[[str], str]:
    """``ensure_ns(name)`` creates the namespace if missing and returns its name."""
    return lambda name: ensure_namespace(api_client, name)


@pytest.fixture
def kubernetes_env(kube_api: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment a DAG on the kubernetes runtime sees, pointed at the test control plane."""
    monkeypatch.setenv("STREAMFLOW_RUNTIME", "kubernetes")
    monkeypatch.setenv("STREAMFLOW_K8S_CONFIG_FILE", str(kube_api.kubeconfig))
    monkeypatch.setenv("STREAMFLOW_K8S_IN_CLUSTER", "false")
    monkeypatch.setenv("STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka.invalid:9092")
    monkeypatch.setenv("STREAMFLOW_POSTGRES_PASSWORD", "from-a-secret")  # pragma: allowlist secret
    return kube_api.kubeconfig


@pytest.fixture(scope="session")
def rendered_overlay() -> list[dict[str, Any]]:
    """Every object of the rendered overlay (``bash scripts/k8s_render.sh``)."""
    if not RENDER_SCRIPT.is_file():
        pytest.fail(f"{RENDER_SCRIPT.relative_to(REPO_ROOT)} is missing: the overlay cannot be checked")
    proc = subprocess.run(["bash", str(RENDER_SCRIPT)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, f"k8s_render.sh failed:\n{proc.stderr[-3000:]}"
    docs = [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]
    assert docs, "k8s_render.sh rendered no objects"
    return docs
