"""The GitHub Actions workflow users get (.github/workflows/ci.yml) passes a real workflow linter:
actionlint, built from the Go module proxy by scripts/setup_test_tools.sh (`make setup-test`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from streamflow.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    path = load_settings().tools_dir / "bin" / "actionlint"
    if not path.is_file():
        pytest.fail(f"{path} missing: run `make setup-test` (scripts/setup_test_tools.sh builds it)")
    return path


def lint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(actionlint), "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_workflow_passes_actionlint(actionlint: Path) -> None:
    result = lint(actionlint, WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    """The linter can fail: a typo in an expression and an outdated action are both reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ github.ref }}", "${{ github.reff }}")
                      .replace("actions/checkout@v5", "actions/checkout@v1"))
    result = lint(actionlint, broken)
    assert result.returncode != 0
    assert "reff" in result.stdout and "checkout@v1" in result.stdout


def test_the_workflow_runs_make_test_on_the_supported_platform() -> None:
    document = yaml.safe_load(WORKFLOW.read_text())
    job = document["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu-")
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make test" in runs
    apt = next(r for r in runs if "apt-get install" in r)
    # every Debian package the preflight asks for (stack + tests) is installed up front
    for package in ("openjdk-17-jdk-headless", "maven", "postgresql", "npm", "unzip", "chromium", "python3.11"):
        assert package in apt, package
    go = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/setup-go"))
    assert str(go["with"]["go-version"]).startswith("1.26")
