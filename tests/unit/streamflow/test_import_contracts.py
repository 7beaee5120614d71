"""The import contracts in .importlinter (run by `make lint`) hold for the tree, and they catch what they
promise to: an import cycle, an upward import, streamflow importing a service's code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("dags", "plugins", "bench", "streamflow", "flink_app", "generator")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """The repo's Python packages (sources only) and its contracts, to break on purpose."""
    def not_python(_directory: str, names: list[str]) -> list[str]:
        return [n for n in names if ("." in n and not n.endswith(".py")) or n in ("vendor", "static", "__pycache__")]

    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=not_python)
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_copy_of_the_tree_keeps_them_too(tree: Path) -> None:
    """The copy is faithful: the breaks below are the only reason the next tests fail."""
    result = _lint(tree)
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_cycle_between_modules_breaks_the_contract(tree: Path) -> None:
    _append(tree / "streamflow" / "settings.py", "import streamflow.catalog  # noqa")  # catalog imports settings
    result = _lint(tree)
    assert result.returncode == 1
    assert "no import cycles" in result.stdout and "BROKEN" in result.stdout
    assert ".settings -> .catalog" in result.stdout or ".catalog -> .settings" in result.stdout


def test_streamflow_importing_a_dag_or_a_service_breaks_the_contracts(tree: Path) -> None:
    _append(tree / "streamflow" / "topics.py", "import dags.bootstrap_pipeline  # noqa")
    _append(tree / "streamflow" / "warehouse.py", "import generator.config  # noqa")
    result = _lint(tree)
    assert result.returncode == 1
    assert "streamflow.topics -> dags.bootstrap_pipeline" in result.stdout
    assert "streamflow.warehouse -> generator.config" in result.stdout
