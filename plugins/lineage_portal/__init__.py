"""StreamFlow's lineage portal: an Airflow 3 UI plugin (FastAPI sub-app + external views).

Imported by ``plugins/streamflow_lineage_plugin.py``; Airflow does not scan this package as plugins
(see ``plugins/.airflowignore``).
"""

from __future__ import annotations

MOUNT = "/streamflow/lineage"  # url_prefix of the FastAPI sub-app, below Airflow's base URL
URL_ROUTE = "streamflow-lineage"  # the Airflow UI page: {airflow_url}/plugin/streamflow-lineage
