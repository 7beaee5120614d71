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
