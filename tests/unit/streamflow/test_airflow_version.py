"""The Airflow version for the metadata-DB migration stamp comes from the installed package's METADATA
(no `import airflow`). A wrong or ambiguous answer would skip a needed migration or migrate needlessly,
so an environment with no installation, two, or a METADATA without a version is refused, naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamflow.settings import load_settings
from streamflow.stack.airflow import airflow_version
from streamflow.stack.process import ServiceError


def _install(tmp_path: Path, version: str, metadata: str | None = None) -> None:
    dist = tmp_path / "venvs/airflow/lib/python3.11/site-packages" / f"apache_airflow-{version}.dist-info"
    dist.mkdir(parents=True)
    text = metadata if metadata is not None else f"Metadata-Version: 2.4\nName: apache-airflow\nVersion: {version}\n"
    (dist / "METADATA").write_text(text)


def test_reads_the_installed_version(tmp_path: Path) -> None:
    _install(tmp_path, "3.3.2")
    assert airflow_version(load_settings(state_dir=tmp_path, install_dir=tmp_path)) == "3.3.2"


@pytest.mark.parametrize(
    ("versions", "metadata", "message"),
    [((), None, "found 0"), (("3.3.2", "3.2.0"), None, "found 2"),
     (("3.3.2",), "Name: apache-airflow\n", "no Version")],
    ids=["none", "two", "no-version-line"],
)
def test_refuses_what_it_cannot_read_exactly(tmp_path: Path, versions: tuple[str, ...], metadata: str | None,
                                            message: str) -> None:
    for version in versions:
        _install(tmp_path, version, metadata)
    with pytest.raises(ServiceError, match=message):
        airflow_version(load_settings(state_dir=tmp_path, install_dir=tmp_path))
