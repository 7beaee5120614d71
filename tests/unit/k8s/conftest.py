"""Fixtures of the static Kubernetes tests: tools installed once per session (scripts/setup_k8s_tools.sh,
idempotent), the single-node overlay rendered once with the real kustomize."""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_static import Doc, ToolsUnavailable, crd_index, ensure_tools, render_overlay


@pytest.fixture(scope="session")
def k8s_tools() -> None:
    try:
        ensure_tools()
    except ToolsUnavailable as error:
        pytest.skip(f"kustomize/CRDs could not be obtained from the registries: {error}")


@pytest.fixture(scope="session")
def rendered(k8s_tools: None, tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    workdir: Path = tmp_path_factory.mktemp("k8s-render")
    docs: list[Doc] = render_overlay(workdir)
    return docs


@pytest.fixture(scope="session")
def crds(k8s_tools: None) -> dict[tuple[str, str], Doc]:
    index: dict[tuple[str, str], Doc] = crd_index()
    return index
