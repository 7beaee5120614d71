"""dbt_quality unit tests: settings never point at a real installation or state dir."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_real_installation(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session environment (tests/stack_isolation.py) exports STREAMFLOW_INSTALL_DIR; the tasks under
    test write dbt artefacts through settings, which must land in a temporary folder."""
    fake = tmp_path_factory.mktemp("no-install")
    monkeypatch.setenv("STREAMFLOW_INSTALL_DIR", str(fake))
    monkeypatch.setenv("STREAMFLOW_STATE_DIR", str(fake))
