"""Warm `streamflow up` to all-healthy (goal <= 60 s) and warm `make setup` (all stamps fresh).

Set STREAMFLOW_BENCH_COLD_SETUP=1 to also time a cold set-up into a fresh state dir (downloads every
wheel and jar again: minutes, network-bound).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from streamflow.settings import load_settings

ROOT = load_settings().repo_root


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    began = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - began


def run() -> list[dict[str, Any]]:
    cli = [sys.executable, "-m", "streamflow"]
    figures: list[dict[str, Any]] = []
    warm_setup = _timed(["bash", "scripts/setup.sh"])
    figures.append({"figure": "warm set-up (nothing changed)", "value": round(warm_setup, 1), "unit": "s",
                    "goal": "<= 5"})
    subprocess.run([*cli, "down"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    warm_up = _timed([*cli, "up"])
    figures.append({"figure": "warm `streamflow up` to all services healthy", "value": round(warm_up, 1),
                    "unit": "s", "goal": "<= 60",
                    "notes": "postgres + kafka + 4 Airflow processes; Airflow components start in parallel"})
    if os.environ.get("STREAMFLOW_BENCH_COLD_SETUP") == "1":
        state = tempfile.mkdtemp(prefix="sf-cold-")
        try:
            cold = _timed(["bash", "scripts/setup.sh"], env={**os.environ, "STREAMFLOW_STATE_DIR": state})
        finally:
            shutil.rmtree(state, ignore_errors=True)
        figures.append({"figure": "cold set-up (empty state dir and caches: venvs + Maven jars)",
                        "value": round(cold, 1), "unit": "s", "goal": "report"})
    return figures
