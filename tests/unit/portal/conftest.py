"""Portal unit tests: the plugin package lives in plugins/ (Airflow puts that folder on sys.path)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PLUGINS_DIR = REPO_ROOT / "plugins"
FIXTURE = Path(__file__).with_name("manifest_fixture.json")

if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))


@pytest.fixture(autouse=True)
def no_real_installation(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in these tests never point at a real installation: the session environment
    (tests/stack_isolation.py) exports STREAMFLOW_INSTALL_DIR, and a fixture writing fake vendor
    libraries or a fake manifest through such settings overwrote the shared ones."""
    fake = tmp_path_factory.mktemp("no-install")
    monkeypatch.setenv("STREAMFLOW_INSTALL_DIR", str(fake))
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(fake))


@pytest.fixture
def manifest() -> dict[str, Any]:
    """A small hand-made manifest shaped like dbt 1.11's (sources with meta, models, tests, exposures)."""
    return json.loads(FIXTURE.read_text())
