"""Loading the versioned model artifact: ``isolation_forest-<version>.joblib`` + ``.json`` metadata.

The metadata records the version, sklearn/numpy versions, feature names, training seed and the
sha256 of the joblib file; loading refuses a file whose hash differs, so a job never scores with a
model other than the one its metadata (and the repo history) describes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
PREFIX = "isolation_forest"


class ArtifactError(RuntimeError):
    """The model artifact is missing, altered, or incompatible with this code."""


@dataclass(frozen=True)
class ModelArtifact:
    model: Any
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def paths(directory: Path, version: str) -> tuple[Path, Path]:
    return directory / f"{PREFIX}-{version}.joblib", directory / f"{PREFIX}-{version}.json"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(directory: Path | str = ARTIFACT_DIR, version: str = "v1") -> dict[str, Any]:
    """The artifact's metadata, once its file is present and unaltered (sha256), its features are the
    code's and it was trained with the installed scikit-learn; raises :class:`ArtifactError` naming the
    problem. It does not unpickle the model: the job's client checks the artifact at submission with it
    (importing sklearn there cost ~3 s of every deploy); the TaskManager then loads it with :func:`load`."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    from flink_app.detection.scoring import FEATURES

    model_path, meta_path = paths(Path(directory), version)
    try:
        metadata: dict[str, Any] = json.loads(meta_path.read_text())
    except OSError as error:
        raise ArtifactError(f"model metadata {meta_path} missing; train it: python -m flink_app.model.train") from error
    try:
        actual = sha256_of(model_path)
    except OSError as error:
        raise ArtifactError(f"model file {model_path} missing; restore it or retrain: "
                            "python -m flink_app.model.train") from error
    if actual != metadata.get("sha256"):
        raise ArtifactError(f"{model_path} sha256 {actual} != metadata {metadata.get('sha256')}; retrain or restore it")
    if tuple(metadata.get("features", ())) != FEATURES:
        raise ArtifactError(f"{meta_path} features {metadata.get('features')} differ from the code's {FEATURES}")
    try:
        sklearn_now = installed_version("scikit-learn")
    except PackageNotFoundError:
        sklearn_now = "not installed"
    if metadata.get("sklearn_version") != sklearn_now:
        raise ArtifactError(f"{meta_path} was trained with scikit-learn {metadata.get('sklearn_version')}, this "
                            f"environment has {sklearn_now}; retrain (python -m flink_app.model.train) or pin it")
    return metadata


def load(directory: Path | str = ARTIFACT_DIR, version: str = "v1") -> ModelArtifact:
    """:func:`verify`, then the unpickled model."""
    import joblib

    metadata = verify(directory, version)
    model_path, _ = paths(Path(directory), version)
    return ModelArtifact(model=joblib.load(model_path), metadata=metadata)


def load_scorer(directory: Path | str = ARTIFACT_DIR, version: str = "v1", threshold: float = 0.7) -> Any:
    """A :class:`FraudScorer` over the artifact (the job calls this once per worker at open())."""
    from flink_app.detection.scoring import FlatForest, FraudScorer, ScoringConfig

    artifact = load(directory, version)
    meta = artifact.metadata
    return FraudScorer(
        FlatForest(artifact.model),
        model_version=artifact.version,
        score_offset=float(meta["score_offset"]),
        score_scale=float(meta["score_scale"]),
        scoring_config=ScoringConfig(threshold=threshold),
    )
