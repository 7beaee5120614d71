"""`make test-k8s` as a figure source (issue 15): the real single-node cluster, our images, the real Flink
Kubernetes Operator and `bootstrap_pipeline` with STREAMFLOW_RUNTIME=kubernetes.

Runs ``scripts/test_k8s.sh`` (it builds what is missing - node binaries, images, operator jar - then runs
tests/k8s_cluster, which must all pass) and reports what the run measured: the build steps' times from
the image builder's own log (``.streamflow/k8s-images/timings.jsonl``, cold or warm as it was), and the
figures the tests wrote (``test-output/k8s_cluster_figures.json``): time until the cluster is ready,
image import, the FlinkDeployment's apply -> RUNNING, the whole ``bootstrap_pipeline`` on Kubernetes,
and the pods' resident memory. Needs root and the whole machine.

The starting state is the machine's: a build that is cached says "warm" in its figure; "cold" needs
an empty ``.streamflow/k8s-*`` and Go/Maven caches (README, "Running on Kubernetes").
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES_FILE = ROOT / "test-output" / "k8s_cluster_figures.json"


def _image_timings(since: float, install: Path) -> list[dict[str, Any]]:
    path = install / "k8s-images" / "timings.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    return [r for r in rows if r.get("at", "") >= stamp]


def run() -> list[dict[str, Any]]:
    from streamflow.settings import load_settings

    install = load_settings().install_dir
    if FIGURES_FILE.exists():
        FIGURES_FILE.unlink()  # never report an earlier run's figures
    began = time.time()
    t0 = time.monotonic()
    completed = subprocess.run(["bash", "scripts/test_k8s.sh"], cwd=ROOT, check=False)
    total = round(time.monotonic() - t0, 1)
    if completed.returncode != 0:
        raise RuntimeError(f"scripts/test_k8s.sh failed (exit {completed.returncode}): no figures published")
    figures = json.loads(FIGURES_FILE.read_text())
    note = "make test-k8s on this machine; images, node binaries and the operator jar as cached before the run"
    out: list[dict[str, Any]] = [
        {"figure": "make test-k8s, whole run (builds as cached + every test in tests/k8s_cluster)", "value": total,
         "unit": "s", "goal": "report", "notes": note},
    ]
    for row in _image_timings(began, install):
        out.append({"figure": f"image {row['image']}: {row['step']} ({row['cache']})", "value": row["seconds"],
                    "unit": "s", "goal": "report", "notes": "scripts/k8s_images.sh, podman (buildah) from the "
                                                            "mmdebstrap Debian base"})
    labels = {
        "cluster_ready_s": ("cluster ready (etcd .. CoreDNS answering, node Ready)", "s"),
        "image_import_s": ("image archives imported into containerd (k8s.io)", "s"),
        "generator_pod_create_to_succeeded_s": ("generator pod: create -> Succeeded (400 events)", "s"),
        "operator_apply_to_stable_running_s": ("FlinkDeployment apply -> STABLE/RUNNING (operator)", "s"),
        "bootstrap_pipeline_on_kubernetes_s": ("bootstrap_pipeline on Kubernetes, trigger -> success", "s"),
    }
    for key, (label, unit) in labels.items():
        if key in figures:
            out.append({"figure": label, "value": figures[key], "unit": unit, "goal": "report", "notes": note})
    for key, value in sorted(figures.items()):
        if key.startswith("rss_bytes_"):
            out.append({"figure": f"resident memory, pod {key.removeprefix('rss_bytes_')}",
                        "value": round(value / 2**20, 1), "unit": "MiB", "goal": "report",
                        "notes": "VmRSS of every process in the pod's memory cgroup, right after the run"})
    return out
