"""streamflow.dbt_runner: how dbt is invoked, what it is given and what comes back.

dbt is faked at its boundary: an executable script (``STREAMFLOW_DBT_EXECUTABLE_PATH``) that records
its argv, working directory and environment, writes what a real dbt would leave in ``--target-path``
and exits with a chosen code. tests/integration/quality runs the real dbt.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from streamflow import dbt_runner
from streamflow.settings import Settings, load_settings

FAKE_DBT = r"""#!/bin/sh
# argv, cwd and the warehouse environment, then whatever FAKE_DBT_WRITE names into --target-path.
target=""
prev=""
for arg in "$@"; do
    [ "$prev" = "--target-path" ] && target="$arg"
    prev="$arg"
done
{
  printf '%s\n' "$@" > "$FAKE_DBT_LOG.argv"
  pwd > "$FAKE_DBT_LOG.cwd"
  env | grep -E '^(STREAMFLOW_WAREHOUSE_|DBT_)' | sort > "$FAKE_DBT_LOG.env"
}
for name in $FAKE_DBT_WRITE; do
    echo '{"results": [{"unique_id": "model.streamflow.x", "status": "success"}]}' > "$target/$name"
done
echo "dbt says hello"
echo "dbt complains" >&2
exit "${FAKE_DBT_EXIT:-0}"
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    dbt = tmp_path / "bin" / "dbt"
    dbt.parent.mkdir()
    dbt.write_text(FAKE_DBT)
    dbt.chmod(dbt.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "repo" / "dbt").mkdir(parents=True)
    monkeypatch.setenv("FAKE_DBT_LOG", str(tmp_path / "call"))
    for name in ("DBT_SEND_ANONYMOUS_USAGE_STATS", "FAKE_DBT_WRITE", "FAKE_DBT_EXIT"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(state_dir=tmp_path, install_dir=tmp_path, repo_root=tmp_path / "repo",
                         postgres_password="p@ss word", dbt_executable_path=str(dbt))


def _call(tmp_path: Path) -> dict[str, Any]:
    env = dict(line.split("=", 1) for line in (tmp_path / "call.env").read_text().splitlines())
    return {"argv": (tmp_path / "call.argv").read_text().splitlines(),
            "cwd": (tmp_path / "call.cwd").read_text().strip(), "env": env}


def test_dbt_gets_the_project_the_target_and_the_warehouse(settings: Settings, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DBT_WRITE", "run_results.json")
    target = tmp_path / "target"
    results = dbt_runner.run_dbt(settings, ["build", "--select", "stg_transactions"], target_path=target, echo=False)
    call = _call(tmp_path)
    project = str(settings.dbt_project_dir)
    assert call["argv"] == ["build", "--select", "stg_transactions", "--project-dir", project,
                            "--profiles-dir", project, "--target-path", str(target)]
    assert call["cwd"] == project
    warehouse = {k: v for k, v in call["env"].items() if k.startswith("STREAMFLOW_WAREHOUSE_")}
    assert warehouse == settings.warehouse_env()
    assert call["env"]["STREAMFLOW_WAREHOUSE_PASSWORD"] == "p@ss word"  # pragma: allowlist secret
    assert call["env"]["DBT_LOG_PATH"] == str(target / "logs")
    assert call["env"]["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert results["results"][0]["status"] == "success"
    assert results["_returncode"] == 0
    assert "dbt says hello" in results["_output"] and "dbt complains" in results["_output"]


def test_a_previous_commands_results_are_never_returned(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text(json.dumps({"results": [{"status": "pass"}]}))
    results = dbt_runner.run_dbt(settings, ["test"], target_path=target, echo=False)  # this dbt writes nothing
    assert "results" not in results and results["_returncode"] == 0


def test_a_failing_dbt_raises_with_its_output_unless_asked_not_to(settings: Settings, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DBT_EXIT", "2")
    with pytest.raises(dbt_runner.DbtError, match=r"`dbt source freshness` failed \(exit 2\):\ndbt says hello"):
        dbt_runner.run_dbt(settings, ["source", "freshness"], target_path=tmp_path / "t", echo=False)
    results = dbt_runner.run_dbt(settings, ["source", "freshness"], target_path=tmp_path / "t", echo=False,
                                 check=False)
    assert results["_returncode"] == 2


def test_another_warehouse_comes_from_its_dsn(settings: Settings, tmp_path: Path) -> None:
    dsn = "postgresql://bench%40user:s%3Acret@db.test:6543/bench_wh"  # pragma: allowlist secret
    dbt_runner.run_dbt(settings, ["debug"], target_path=tmp_path / "t", echo=False, warehouse_dsn=dsn)
    env = _call(tmp_path)["env"]
    assert {k: v for k, v in env.items() if k.startswith("STREAMFLOW_WAREHOUSE_")} == {
        "STREAMFLOW_WAREHOUSE_HOST": "db.test", "STREAMFLOW_WAREHOUSE_PORT": "6543",
        "STREAMFLOW_WAREHOUSE_USER": "bench@user",
        "STREAMFLOW_WAREHOUSE_PASSWORD": "s:cret",  # pragma: allowlist secret
        "STREAMFLOW_WAREHOUSE_DB": "bench_wh"}
    assert dbt_runner.warehouse_env_from_dsn("postgresql://db.test")["STREAMFLOW_WAREHOUSE_PORT"] == "5432"


def test_parse_manifest_fails_without_a_manifest(settings: Settings) -> None:
    with pytest.raises(dbt_runner.DbtError, match="dbt parse wrote no manifest"):
        dbt_runner.parse_manifest(settings)


def test_parse_manifest_seeds_cosmos_partial_parse(settings: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DBT_WRITE", "manifest.json partial_parse.msgpack")
    assert dbt_runner.parse_manifest(settings) == settings.dbt_target_dir / "manifest.json"
    assert _call(tmp_path)["argv"][:2] == ["parse", "--quiet"]
    seeded = settings.dbt_project_dir / "target" / "partial_parse.msgpack"
    assert seeded.read_text() == (settings.dbt_target_dir / "partial_parse.msgpack").read_text()


def test_parse_manifest_marks_the_dag_files_changed_only_when_the_models_change(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dag-processor re-parses an unchanged DAG file only every 10 min; the Cosmos DAGs render from
    the manifest, so a parse that changed the models must make their files look edited, and one that
    only rewrote the manifest's metadata must not (every parse does, and a re-parse costs CPU)."""
    import os

    dags = settings.repo_root / "dags"
    dags.mkdir()
    for name in ("a.py", "b.py"):
        (dags / name).write_text("")
    writes = iter([
        {"metadata": {"generated_at": "1"}, "nodes": {"model.x": {"raw_code": "select 1"}}},
        {"metadata": {"generated_at": "2"}, "nodes": {"model.x": {"raw_code": "select 1"}}},
        {"metadata": {"generated_at": "3"}, "nodes": {"model.x": {"raw_code": "select 2"}}},
    ])

    def fake_dbt(settings_: Settings, args: list[str], target_path: Path, **_: Any) -> dict[str, Any]:
        target_path.mkdir(parents=True, exist_ok=True)
        (target_path / "manifest.json").write_text(json.dumps(next(writes)))
        return {}

    monkeypatch.setattr(dbt_runner, "run_dbt", fake_dbt)

    def parse_and_report_touched() -> set[str]:
        for dag_file in dags.iterdir():
            os.utime(dag_file, (1_000_000, 1_000_000))
        dbt_runner.parse_manifest(settings)
        return {f.name for f in dags.iterdir() if f.stat().st_mtime > 1_000_000}

    assert parse_and_report_touched() == {"a.py", "b.py"}   # no manifest before: new models
    assert parse_and_report_touched() == set()              # same models, new metadata
    assert parse_and_report_touched() == {"a.py", "b.py"}   # a model changed
