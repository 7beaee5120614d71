"""Airflow 3 plugin: StreamFlow's lineage portal inside the Airflow UI (menu "StreamFlow").

Thin on purpose: the app lives in ``plugins/lineage_portal`` (FastAPI, login-protected) and the
lineage logic in ``streamflow.lineage``. The external views carry a ``url_route``, so Airflow shows
the pages inside its own UI (``/plugin/streamflow-lineage``) instead of opening a new tab; their
``href`` is the sub-app's path below Airflow's base URL.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin

_PLUGINS_DIR = str(Path(__file__).resolve().parent)
if _PLUGINS_DIR not in sys.path:  # the api-server puts plugins/ on sys.path; other entry points may not
    sys.path.append(_PLUGINS_DIR)

from lineage_portal import MOUNT, URL_ROUTE  # noqa: E402
from lineage_portal.app import create_app  # noqa: E402

from streamflow.settings import get_settings  # noqa: E402

CATEGORY = "StreamFlow"


def menu_entries(airflow_url: str) -> list[dict[str, Any]]:
    """The menu entries StreamFlow → Lineage / dbt Docs / Data Quality."""
    base = urlsplit(airflow_url).path.rstrip("/") + MOUNT
    return [
        {"name": "Lineage", "category": CATEGORY, "href": f"{base}/", "url_route": URL_ROUTE,
         "destination": "nav"},
        {"name": "dbt Docs", "category": CATEGORY, "href": f"{base}/docs/", "url_route": "streamflow-dbt-docs",
         "destination": "nav"},
        {"name": "Data Quality", "category": CATEGORY, "href": f"{base}/quality",
         "url_route": "streamflow-quality", "destination": "nav"},
    ]


class StreamFlowLineagePlugin(AirflowPlugin):
    name = "streamflow_lineage"
    # AirflowPlugin declares these as plain class attributes: RUF012's ClassVar would clash with mypy.
    fastapi_apps = [{"name": "streamflow_lineage", "app": create_app(), "url_prefix": MOUNT}]  # noqa: RUF012
    external_views = menu_entries(get_settings().airflow_url)
