"""Hints point at things that exist: commands the CLI has, files the repo has, and a runbook with an
entry per incident. (A hint to `streamflow run`, a missing assets.py, a FIELD-NOTES file outside the
repo and a renamed dbt test each sent a new user nowhere.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from streamflow.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
INCIDENTS = ("A Flink job keeps restarting", "The DLQ is growing", "dbt_quality is red", "Kafka down",
             "PostgreSQL down", "The disk is full", "Airflow scheduler stuck")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line and (ROOT / line).is_file()]


def commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(sub.choices)  # type: ignore[attr-defined]


def texts() -> dict[Path, str]:
    wanted = {".md", ".html", ".py", ".sh", ".yml", ".yaml", ".in", ".txt", ".toml"}
    found = {}
    for path in tracked_files():
        if path.suffix in wanted and "/tests/" not in str(path) and ".sf-" not in str(path):
            try:
                found[path] = path.read_text()
            except UnicodeDecodeError:
                continue
    return found


def test_every_streamflow_command_in_docs_and_pages_exists() -> None:
    known = commands()
    pattern = re.compile(r"(?:bin/streamflow|`streamflow|<code>streamflow)\s+([a-z][a-z-]*)")
    wrong = [f"{path.relative_to(ROOT)}: streamflow {word}" for path, text in texts().items()
             for word in pattern.findall(text) if word not in known]
    assert not wrong, "hints to commands the CLI does not have:\n" + "\n".join(wrong)


def test_no_hint_cites_the_field_notes_outside_the_repo() -> None:
    cited = [str(p.relative_to(ROOT)) for p, text in texts().items() if "FIELD-NOTES" in text]
    assert not cited, f"these cite a FIELD-NOTES file that is not in the repo: {cited}"


def test_paths_named_in_setup_scripts_locks_and_dbt_comments_exist() -> None:
    """Repo paths named by the scripts (comments and messages), lock inputs, dbt_project.yml and the
    Makefile are real files (``$ROOT/`` prefixes count as the repo root)."""
    sources = [*sorted((ROOT / "scripts").glob("*.sh")), *sorted((ROOT / "locks").glob("*.in")),
               ROOT / "dbt" / "dbt_project.yml", ROOT / "Makefile"]
    path_re = re.compile(r"(?<![\w/$.-])((?:[\w.-]+/)+[\w.-]+\.(?:py|sh|sql|yml|yaml|md|json|txt|in|env|xml))\b")
    missing = []
    for source in sources:
        for line in source.read_text().replace("$ROOT/", " ").replace("${ROOT}/", " ").splitlines():
            if source.suffix != ".sh":
                if "#" not in line:
                    continue
                line = line[line.index("#"):]
            for name in path_re.findall(line):
                candidates = [ROOT / name, source.parent / name, ROOT / "dbt" / name]
                if not any(c.exists() for c in candidates):
                    missing.append(f"{source.relative_to(ROOT)}: {name}")
    assert not missing, "comments name files that do not exist:\n" + "\n".join(missing)


def test_the_runbook_has_every_incident_as_symptom_check_fix() -> None:
    text = RUNBOOK.read_text()
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL))
    for incident in INCIDENTS:
        assert incident in sections, f"runbook entry missing: {incident}"
        body = sections[incident]
        for part in ("**Symptom.**", "**Check.**", "**Fix.**"):
            assert part in body, f"{incident}: no {part}"
        assert "```bash" in body or "`bin/streamflow" in body, f"{incident}: no command to run"
