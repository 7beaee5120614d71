"""Shared test configuration: where test artefacts (screenshots, logs) go."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """A git-ignored folder for artefacts a person may want to look at after the run."""
    path = REPO_ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path
