from __future__ import annotations

import json
import shutil

import pytest

from flink_app.detection.scoring import FEATURES, FlatForest
from flink_app.model import artifact


def test_shipped_artifact_loads_and_matches_its_metadata():
    loaded = artifact.load()
    meta = loaded.metadata
    model_path, _ = artifact.paths(artifact.ARTIFACT_DIR, "v1")
    assert artifact.sha256_of(model_path) == meta["sha256"]
    assert meta["version"] == "v1" and tuple(meta["features"]) == FEATURES
    assert meta["training"]["labels_used"] is False and isinstance(meta["training"]["seed"], int)
    assert model_path.stat().st_size < 2_000_000  # small enough to live in the repo
    import sklearn

    assert meta["sklearn_version"] == sklearn.__version__
    assert FlatForest(loaded.model).anomaly([[0.0] * len(FEATURES)]).shape == (1,)


def test_altered_artifact_is_refused(tmp_path):
    for source in artifact.paths(artifact.ARTIFACT_DIR, "v1"):
        shutil.copy(source, tmp_path / source.name)
    _model_path, meta_path = artifact.paths(tmp_path, "v1")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(artifact.ArtifactError, match="sha256"):
        artifact.load(tmp_path, "v1")


def test_scorer_from_artifact_uses_its_calibration():
    scorer = artifact.load_scorer(threshold=0.8)
    meta = artifact.load().metadata
    assert scorer.score_offset == meta["score_offset"] and scorer.score_scale == meta["score_scale"]
    assert scorer.scoring.threshold == 0.8 and scorer.model_version == "v1"


def _copy_artifact(tmp_path):
    for source in artifact.paths(artifact.ARTIFACT_DIR, "v1"):
        shutil.copy(source, tmp_path / source.name)
    return artifact.paths(tmp_path, "v1")


@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (lambda model, meta: model.write_bytes(model.read_bytes() + b"\0"), "sha256"),
        (lambda model, meta: model.unlink(), "model file .* missing"),
        (lambda model, meta: meta.unlink(), "metadata .* missing"),
        (lambda model, meta: _edit(meta, features=["amount"]), "features"),
        (lambda model, meta: _edit(meta, sklearn_version="0.0.1"), "scikit-learn 0.0.1"),
    ],
    ids=["altered-model", "no-model", "no-metadata", "other-features", "other-sklearn"],
)
def test_verify_refuses_what_load_would_refuse_without_unpickling(tmp_path, alter, message):
    """The job's client checks the artifact with verify() (no sklearn import); every defect it misses would
    only show on the TaskManager, after the deploy reported success, so each must be caught here."""
    model_path, meta_path = _copy_artifact(tmp_path)
    assert artifact.verify(tmp_path, "v1")["version"] == "v1"
    alter(model_path, meta_path)
    with pytest.raises(artifact.ArtifactError, match=message):
        artifact.verify(tmp_path, "v1")
    with pytest.raises(artifact.ArtifactError, match=message):
        artifact.load(tmp_path, "v1")


def _edit(meta_path, **changes):
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))
