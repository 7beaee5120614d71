"""No secret in the repository: a real scanner (detect-secrets) over every tracked file, plus our own
rule that no password literal is ever assigned in code or config (they are generated at set-up)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def test_detect_secrets_finds_nothing() -> None:
    # Lock files hold package hashes and the model metadata holds the artifact's sha256: digests, not secrets.
    files = [f for f in _tracked_files() if not f.endswith((".lock.json", "package-lock.json", ".txt"))
             and not f.startswith(("locks/", "flink_app/model/artifacts/"))]
    scanner = Path(sys.executable).with_name("detect-secrets")
    proc = subprocess.run([str(scanner), "scan", *files], cwd=REPO, capture_output=True, text=True, check=True)
    results = json.loads(proc.stdout)["results"]
    assert results == {}, f"possible secrets committed: {json.dumps(results, indent=1)[:2000]}"


PASSWORD_LITERAL = re.compile(
    r"""(?ix)(password|passwd|secret|token)["']?\s*[:=]\s*["']([^"'\s{$<][^"'\s]{3,})["']""")
ALLOWED_VALUES = {"password", "username", "token", "access_token", "secret"}


def test_no_password_literals() -> None:
    offenders = []
    for name in _tracked_files():
        if not name.endswith((".py", ".yaml", ".yml", ".sql", ".sh", ".cfg", ".toml", ".json", ".env")):
            continue
        if name.startswith(("tests/", "locks/")) or "package-lock" in name:
            continue
        text = (REPO / name).read_text(errors="replace")
        for match in PASSWORD_LITERAL.finditer(text):
            if match.group(2).lower() not in ALLOWED_VALUES:
                offenders.append(f"{name}: {match.group(0)}")
    assert offenders == []
