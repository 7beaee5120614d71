"""Where a stack's files are, derived from the settings' ``state_dir``, ``install_dir`` and ``repo_root``.

A mixin of :class:`streamflow.settings.Settings` (``settings.venvs_dir``, ``settings.logs_dir``...), kept
apart so the settings module holds the variables and their checks and this one the folder layout.
What a stack *is* (data, logs, pid files, secrets) lives under ``state_dir``; what it *runs* (venvs,
jars, tools: slow to build, read-only afterwards) under ``install_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING


class SettingsLayout:
    """The derived folders and files; the fields they derive from are the settings' own."""

    if TYPE_CHECKING:  # fields of Settings (declared there, with their defaults and checks)
        repo_root: Path
        state_dir: Path
        install_dir: Path
        dbt_artifacts_dir: str
        dbt_executable_path: str

    @property
    def venvs_dir(self) -> Path:
        return self.install_dir / "venvs"

    @property
    def jars_dir(self) -> Path:
        return self.install_dir / "jars"

    @property
    def flink_functions_jar(self) -> Path:
        """The jobs' Java functions (jvm/flink-functions), compiled by scripts/build_flink_functions.sh."""
        return self.jars_dir / "functions" / "streamflow-flink-functions.jar"

    @property
    def tools_dir(self) -> Path:
        """uv, kustomize and other pinned tools (scripts/setup.sh, scripts/setup_k8s_tools.sh)."""
        return self.install_dir / "tools"

    @property
    def portal_assets_dir(self) -> Path:
        """The lineage portal's browser libraries (scripts/setup_portal.sh runs `npm ci` there)."""
        return self.install_dir / "portal-assets"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def dbt_project_dir(self) -> Path:
        return self.repo_root / "dbt"

    @property
    def dags_dir(self) -> Path:
        """Airflow's DAGs folder (the repo's ``dags/``)."""
        return self.repo_root / "dags"

    @property
    def dbt_artifacts(self) -> Path:
        return Path(self.dbt_artifacts_dir) if self.dbt_artifacts_dir else self.state_dir / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        """Where set-up writes the manifest Cosmos renders the DAGs from. Parsed from the repo's dbt
        project by `streamflow prepare` (no database involved), so part of the installation unless
        STREAMFLOW_DBT_ARTIFACTS_DIR says otherwise (the Airflow image bakes it there)."""
        if self.dbt_artifacts_dir:
            return Path(self.dbt_artifacts_dir) / "target"
        return self.install_dir / "dbt" / "target"

    @property
    def dbt_docs_dir(self) -> Path:
        """Where bootstrap_pipeline publishes dbt docs (index, manifest, catalog) for the lineage portal."""
        return self.dbt_artifacts / "docs"

    @property
    def dbt_executable(self) -> Path:
        if self.dbt_executable_path:
            return Path(self.dbt_executable_path)
        return self.venvs_dir / "dbt" / "bin" / "dbt"

    def venv_python(self, name: str) -> Path:
        return self.venvs_dir / name / "bin" / "python"
