"""A real single-node Kubernetes cluster (tests/k8s_cluster_env.py) for the tests in this folder.

These tests need root, ~4 GB of free memory and several minutes: they run only when asked for with
``STREAMFLOW_TEST_K8S_CLUSTER=1`` (``make test-k8s``). Without it they are reported as skipped, with
that reason, never silently dropped. With it, nothing here skips: a cluster that cannot start, a
missing binary, image or operator jar FAILS the run (a real-cluster run that skips would look green
without ever having run a pod).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamflow.settings import Settings
from tests.k8s_cluster_env import (
    FIGURES,
    IMAGE_ARCHIVES_DEFAULT,
    Cluster,
    ClusterError,
    StackEndpoints,
    expose_local_stack,
    unexpose_local_stack,
)

ENABLE = "STREAMFLOW_TEST_K8S_CLUSTER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"k8s_cluster: needs the real single-node cluster; runs only with {ENABLE}=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(ENABLE) == "1":
        return
    skip = pytest.mark.skip(reason=f"real Kubernetes cluster test: set {ENABLE}=1 (make test-k8s) to run it")
    for item in items:
        if "k8s_cluster" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster(settings: Settings) -> Iterator[Cluster]:
    """The cluster, under ``<state dir>/k8s-cluster`` (the session's test state dir), with our
    generator and Flink images imported into containerd's k8s.io namespace."""
    if os.geteuid() != 0:
        pytest.fail("the real-cluster tests need root (bridge, iptables, mounts, cgroups)", pytrace=False)
    archives = [IMAGE_ARCHIVES_DEFAULT / f"{name}-0.1.0.tar" for name in ("generator", "flink")]
    missing = [str(a) for a in archives if not a.is_file()]
    if missing:
        pytest.fail(f"image archives missing (bash scripts/k8s_images.sh): {missing}", pytrace=False)
    state = settings.state_dir / "k8s-cluster"
    if (state / "pids.json").exists():
        Cluster(state).stop()  # what a crashed earlier session left
    try:
        started = Cluster(state).start()
    except (ClusterError, OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"the Kubernetes cluster did not start: {error}", pytrace=False)
    try:
        t0 = time.monotonic()
        took = started.import_images(archives)
        FIGURES.update(started.timings)
        FIGURES["image_import_s"] = round(time.monotonic() - t0, 1)
        FIGURES["image_import_per_archive_s"] = took
        print(f"\ncluster ready in {started.timings['cluster_ready_s']} s; images imported in "
              f"{FIGURES['image_import_s']} s {took}")
        yield started
    finally:
        for line in started.stop():
            print(f"[k8s-cluster] {line}")


@pytest.fixture(scope="session")
def pod_endpoints(stack: Settings, cluster: Cluster) -> Iterator[StackEndpoints]:
    """The session's Kafka and PostgreSQL, reachable from pods at the node address."""
    try:
        yield expose_local_stack(stack, cluster.state_dir)
    finally:
        unexpose_local_stack(cluster.state_dir)


@pytest.fixture(scope="session")
def figures_file() -> Iterator[Path]:
    """Where the measured figures go: test-output/k8s_cluster_figures.json (git-ignored)."""
    path = Path(__file__).resolve().parents[2] / "test-output" / "k8s_cluster_figures.json"
    yield path
    if FIGURES:
        import json

        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(FIGURES, indent=1, sort_keys=True))
