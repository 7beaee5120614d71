"""streamflow.catalog: the jobs come from k8s/base/flink, the layers from dbt/models, the tables from the
manifest; the tests cross-check each against a second, independent source."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamflow import catalog
from streamflow.flink_spec import SPEC_DIR, SpecError, load_spec
from streamflow.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
MANIFEST = load_settings().dbt_target_dir / "manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    if not MANIFEST.exists():
        pytest.fail(f"{MANIFEST} missing: `bin/streamflow prepare` (make setup) must produce it")
    return catalog.load_manifest(MANIFEST)


def _copy_specs(tmp_path: Path) -> Path:
    target = tmp_path / "flink"
    shutil.copytree(SPEC_DIR, target)
    return target


def _set_order(path: Path, value: str | None) -> None:
    document = yaml.safe_load(path.read_text())
    annotations = document["metadata"].setdefault("annotations", {})
    if value is None:
        annotations.pop(catalog.ORDER_ANNOTATION, None)
    else:
        annotations[catalog.ORDER_ANNOTATION] = value
    path.write_text(yaml.safe_dump(document))


# ---- Flink jobs --------------------------------------------------------------------------------------
def test_one_job_per_flinkdeployment_in_annotation_order() -> None:
    jobs = catalog.flink_jobs()
    assert [job.order for job in jobs] == list(range(len(jobs)))
    assert {job.name for job in jobs} == {p.stem for p in SPEC_DIR.glob("*.yaml")
                                          if yaml.safe_load(p.read_text()).get("kind") == "FlinkDeployment"}
    written = [int(load_spec(job.spec_path).raw["metadata"]["annotations"][catalog.ORDER_ANNOTATION]) for job in jobs]
    assert written == sorted(written)  # every real spec says where it goes
    for job in jobs:
        assert job.key == job.name.replace("-", "_")
        module = load_spec(job.spec_path).python_module
        assert module == f"flink_app.jobs.{job.key}" and (REPO / f"{module.replace('.', '/')}.py").is_file()
    assert catalog.flink_job_keys() == tuple(job.key for job in jobs)


def test_the_jobs_are_the_ones_the_dbt_sources_name(manifest: dict[str, Any]) -> None:
    """The lineage graph draws a Flink job per bronze source's ``meta.flink_job``: they must be the specs' jobs."""
    metas = [{**((s.get("config") or {}).get("meta") or {}), **(s.get("meta") or {})}
             for s in manifest["sources"].values()]
    named = {str(meta["flink_job"]) for meta in metas if meta.get("flink_job")}
    assert named == set(catalog.flink_job_keys())


def test_a_job_is_found_by_either_spelling() -> None:
    first = catalog.flink_jobs()[0]
    assert catalog.flink_job(first.key) == catalog.flink_job(first.name) == first
    with pytest.raises(SpecError, match="no Flink job 'nope'; the jobs are " + ", ".join(catalog.flink_job_keys())):
        catalog.flink_job("nope")


def test_a_spec_without_an_order_comes_last_and_a_clash_or_a_bad_value_fails(tmp_path: Path) -> None:
    directory = _copy_specs(tmp_path)
    first = catalog.flink_jobs()[0]
    _set_order(directory / first.spec_path.name, None)
    assert catalog.flink_jobs(directory)[-1].name == first.name
    assert [j.order for j in catalog.flink_jobs(directory)] == list(range(len(catalog.flink_jobs())))

    clash = _copy_specs(tmp_path / "clash")
    second = catalog.flink_jobs()[1]
    _set_order(clash / second.spec_path.name, "0")
    with pytest.raises(SpecError, match=r"share a streamflow\.io/pipeline-order"):
        catalog.flink_jobs(clash)

    bad = _copy_specs(tmp_path / "bad")
    _set_order(bad / first.spec_path.name, "first")
    with pytest.raises(SpecError, match="must be an integer, got 'first'"):
        catalog.flink_jobs(bad)


# ---- dbt layers ------------------------------------------------------------------------------------
def test_every_model_folder_has_a_layer_and_every_layer_a_folder() -> None:
    """A new folder under dbt/models would otherwise be left out of the DAGs' selectors."""
    folders = {p.name for p in (REPO / "dbt" / "models").iterdir() if p.is_dir()}
    assert folders == set(catalog.FOLDER_LAYERS)
    assert set(catalog.FOLDER_LAYERS.values()) == set(catalog.LAYERS) - {"bronze"}


def test_selectors_per_layer_and_per_folder() -> None:
    assert catalog.dbt_selectors("silver") == ["path:models/staging", "path:models/intermediate"]
    assert catalog.dbt_selectors("gold") == ["path:models/marts"]
    assert catalog.dbt_selectors("silver", "gold") == list(catalog.dbt_folder_selectors().values())
    for folder, selector in catalog.dbt_folder_selectors().items():
        assert (REPO / "dbt" / selector.removeprefix("path:")).is_dir() and selector.endswith(f"/{folder}")
    with pytest.raises(ValueError, match="no dbt models in layer"):
        catalog.dbt_selectors("bronze")


def test_layer_tables_hold_every_model_and_source_of_the_project(manifest: dict[str, Any]) -> None:
    tables = catalog.layer_tables(manifest)
    project = manifest["metadata"]["project_name"]
    models = {n["name"]: n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["package_name"] == project}
    assert sorted(tables["silver"] + tables["gold"]) == sorted(models)
    assert tables["bronze"] == sorted(s["identifier"] for s in manifest["sources"].values())
    for layer in ("silver", "gold"):
        for name in tables[layer]:  # pipeline.row_counts counts <layer>.<table>: the schema must be the layer
            assert models[name]["schema"] == layer, (name, models[name]["schema"])
            assert models[name]["original_file_path"].split("/")[1] in catalog.dbt_folder_selectors()


def test_layer_of_reads_the_folder_first_then_the_schema() -> None:
    assert catalog.layer_of({"original_file_path": "models/staging/bronze/stg_x.sql", "schema": "gold"}) == "silver"
    assert catalog.layer_of({"original_file_path": "models/marts/fct.sql"}) == "gold"
    assert catalog.layer_of({"original_file_path": "models/other/x.sql", "schema": "dev_gold"}) == "gold"
    assert catalog.layer_of({"original_file_path": "models/other/x.sql", "schema": "misc"}) == "other"


def test_layer_tables_are_read_lazily_and_follow_the_manifest(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, install_dir=tmp_path, postgres_password="x")
    lazy = catalog.ManifestLayerTables(settings)  # no manifest yet: building it must not read one
    with pytest.raises(catalog.ManifestNotFound, match="streamflow prepare"):
        dict(lazy)
    target = settings.dbt_target_dir / "manifest.json"
    target.parent.mkdir(parents=True)

    def write(models: list[str], mtime: float) -> None:
        nodes = {f"model.p.{m}": {"resource_type": "model", "name": m, "package_name": "p", "schema": "silver",
                                  "original_file_path": f"models/staging/{m}.sql"} for m in models}
        target.write_text(json.dumps({"metadata": {"project_name": "p"}, "nodes": nodes, "sources": {}}))
        os.utime(target, (mtime, mtime))

    write(["stg_a"], 1_000_000)
    assert dict(lazy) == {"bronze": [], "silver": ["stg_a"], "gold": []}
    write(["stg_a", "stg_b"], 1_000_100)  # a re-parsed manifest is read again
    assert lazy["silver"] == ["stg_a", "stg_b"]


def test_generator_env_gets_the_settings_topic(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, postgres_password="x", topic_transactions="t.renamed")
    env = catalog.bind_generator_env({"GENERATOR_TOPIC": "transactions.raw", "OTHER": "1"}, settings)
    assert env == {"GENERATOR_TOPIC": "t.renamed", "OTHER": "1"}
