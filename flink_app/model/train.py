"""Train the IsolationForest from generator data, reproducibly, and write the versioned artifact.

    python -m flink_app.model.train --seed 7 --events 100000 --out flink_app/model/artifacts

Events come from the generator's CLI (``python -m generator --seed S --total-events N
--fraud-rate R --output -``) run with ``--generator-python`` (default: the generator venv), or from
``--input`` (JSON lines). Features are computed with the scorer's own state updates, in event order
per customer, exactly as the Flink job sees them. Training is unsupervised: ``is_fraud_truth`` is
never used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from flink_app.detection import rules as r
from flink_app.detection.scoring import FEATURES, features
from flink_app.events import Transaction, parse_event
from flink_app.model.artifact import ARTIFACT_DIR, paths, sha256_of

REPO_ROOT = Path(__file__).resolve().parents[2]


DEFAULT_START = "2026-01-01T00:00:00.000Z"  # fixed: same seed + start time = byte-identical stream


def generator_command(python: str, seed: int, total: int, fraud_rate: float, start: str = DEFAULT_START) -> list[str]:
    return [python, "-m", "generator", "--seed", str(seed), "--total-events", str(total), "--fraud-rate",
            str(fraud_rate), "--start-time", start, "--events-per-second", "0", "--output", "-"]


def generator_events(seed: int, total: int, fraud_rate: float, python: str) -> Iterator[bytes]:
    cmd = generator_command(python, seed, total, fraud_rate)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO_ROOT) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                yield line.rstrip(b"\n")
        if proc.wait() != 0:
            raise SystemExit(f"generator failed: {' '.join(cmd)}")


def valid_transactions(lines: Iterable[bytes]) -> list[Transaction]:
    out = [t for t in (parse_event(line) for line in lines) if isinstance(t, Transaction)]
    out.sort(key=lambda t: t.event_ts)
    return out


def feature_matrix(transactions: Iterable[Transaction], cfg: r.RuleConfig | None = None) -> np.ndarray:
    cfg = cfg or r.RuleConfig()
    states: dict[str, r.CustomerState] = {}
    rows = []
    for txn in transactions:
        state = states.setdefault(txn.customer_id, r.CustomerState())
        rows.append(features(state, txn))
        r.update(state, txn, cfg, r.evaluate(state, txn, cfg), None)
    return np.asarray(rows, dtype=np.float64)


def train(x: np.ndarray, seed: int, n_estimators: int = 100, max_samples: int = 256) -> object:
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, max_features=1.0,
                            contamination="auto", random_state=seed)
    model.fit(x)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--version", default="v1")
    parser.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--input", type=Path, help="JSON lines instead of running the generator")
    parser.add_argument("--generator-python", default=str(REPO_ROOT / ".streamflow/venvs/generator/bin/python"))
    args = parser.parse_args(argv)

    import joblib
    import sklearn

    if args.input:
        lines: Iterable[bytes] = (line.rstrip(b"\n") for line in args.input.open("rb"))
        source = str(args.input)
    else:
        python = args.generator_python if Path(args.generator_python).exists() else sys.executable
        lines = generator_events(args.seed, args.events, args.fraud_rate, python)
        source = " ".join(["python", *generator_command("", args.seed, args.events, args.fraud_rate)[1:]])
    x = feature_matrix(valid_transactions(lines))
    model = train(x, args.seed)
    raw = -model.score_samples(x)  # type: ignore[attr-defined]
    offset, top = float(np.quantile(raw, 0.5)), float(np.quantile(raw, 0.999))
    args.out.mkdir(parents=True, exist_ok=True)
    model_path, meta_path = paths(args.out, args.version)
    joblib.dump(model, model_path, compress=3)
    metadata = {
        "version": args.version,
        "algorithm": "sklearn.ensemble.IsolationForest",
        "params": {"n_estimators": 100, "max_samples": 256, "max_features": 1.0, "random_state": args.seed},
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "features": list(FEATURES),
        "training": {"seed": args.seed, "events": len(x), "fraud_rate": args.fraud_rate, "source": source,
                     "labels_used": False},
        "score_offset": round(offset, 6),
        "score_scale": round(top - offset, 6),
        "file": model_path.name,
        "sha256": sha256_of(model_path),
    }
    meta_path.write_text(json.dumps(metadata, indent=2) + "\n")
    print(json.dumps({"model": str(model_path), "events": len(x), "sha256": metadata["sha256"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
