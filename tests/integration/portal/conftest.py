"""Portal integration tests talk to the real api-server; the app's routes are read from the plugin
package itself (plugins/ on sys.path, as Airflow does) so a new route cannot be left untested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamflow.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "plugins"))


@pytest.fixture(scope="session")
def portal_stack(airflow_stack: Settings) -> Settings:
    """Airflow up, with a dbt manifest to draw and a published docs site to serve - made the platform's
    way (`streamflow prepare`, the publish_dbt_docs task's function) when no pipeline run made them yet."""
    if not (airflow_stack.dbt_target_dir / "manifest.json").exists():
        subprocess.run([str(REPO_ROOT / "bin" / "streamflow"), "prepare"], check=True, timeout=300)
    if not (airflow_stack.dbt_docs_dir / "index.html").exists():
        from streamflow.pipeline import publish_docs

        publish_docs()
    return airflow_stack
