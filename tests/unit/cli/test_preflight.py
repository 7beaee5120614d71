"""scripts/preflight.sh: every missing prerequisite at once, each with the command that installs it;
sudo for a normal user; macOS refused with a clear message.

The machine's own tools are replaced by a folder of stand-ins on PATH (a boundary fake): ``java`` that
reports a version, ``apt-get``/``sudo`` that record how they were called, ``uname``/``id`` that play
another system or user. Nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PREFLIGHT = ROOT / "scripts" / "preflight.sh"
BASICS = ["bash", "sed", "sort", "head", "tail", "awk", "df", "mktemp", "rm", "cat", "tr", "cut", "ls", "mkdir",
          "env", "dirname", "printf", "grep", "seq", "sleep", "date", "uname", "id"]


def script(folder: Path, name: str, body: str) -> None:
    """A stand-in tool. The folder's entries may be symlinks to the real tools: unlink first, never
    write through a link (that would overwrite the machine's own /usr/bin/<name>)."""
    path = folder / name
    path.unlink(missing_ok=True)
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in BASICS:
        found = shutil.which(tool)
        if found:  # a wrapper, not a symlink: replacing it can never touch the real tool
            script(folder, tool, f'exec {found} "$@"')
    return folder


def run(bin_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "STREAMFLOW_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(["bash", str(PREFLIGHT), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_lists_everything_missing_at_once_with_the_apt_command(bin_dir: Path, tmp_path: Path) -> None:
    script(bin_dir, "apt-get", "exit 0")
    result = run(bin_dir, tmp_path, "--test")
    assert result.returncode == 1
    out = result.stdout
    for what, package in (("java 17", "openjdk-17-jdk-headless"), ("javac", "openjdk-17-jdk-headless"),
                          ("maven", "maven"), ("npm", "npm"), ("unzip", "unzip")):
        line = next((line for line in out.splitlines() if "MISSING" in line and what in line), None)
        assert line is not None, f"{what} not reported:\n{out}"
        assert f"apt-get install -y --no-install-recommends {package}" in line
    go = next(line for line in out.splitlines() if "MISSING" in line and "go >= 1.26" in line)
    assert "no Debian/Ubuntu release" in go
    assert "apt-get update && apt-get install -y --no-install-recommends" in out  # the one-command summary


def test_a_normal_user_gets_sudo_commands_and_install_goes_through_sudo(bin_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script(bin_dir, "id", 'case "$1" in -u) echo 1000;; -un) echo alice;; *) echo "uid=1000(alice)";; esac')
    script(bin_dir, "sudo", f'echo "sudo $*" >> {calls}; exec "$@"')
    script(bin_dir, "apt-get", f'echo "apt-get $*" >> {calls}')
    result = run(bin_dir, tmp_path, "--install")
    assert "alice, packages through sudo" in result.stdout
    assert "sudo apt-get install -y --no-install-recommends openjdk-17-jdk-headless" in result.stdout
    recorded = calls.read_text()
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends" in recorded
    assert "openjdk-17-jdk-headless" in recorded and "maven" in recorded
    assert result.returncode == 1  # the fake apt-get installed nothing: still missing after the re-check


def test_old_java_and_old_go_are_reported(bin_dir: Path, tmp_path: Path) -> None:
    script(bin_dir, "java", "echo 'openjdk version \"11.0.2\" 2019-01-15' >&2")
    script(bin_dir, "go", 'echo go1.19.8')
    out = run(bin_dir, tmp_path, "--test").stdout
    assert any("MISSING" in line and "java 17 (found 11)" in line for line in out.splitlines())
    assert any("MISSING" in line and "go >= 1.26 (found go1.19.8)" in line for line in out.splitlines())


def test_a_go_that_can_switch_toolchains_is_enough(bin_dir: Path, tmp_path: Path) -> None:
    script(bin_dir, "go", 'echo go1.22.2')
    out = run(bin_dir, tmp_path, "--test").stdout
    assert any(line.lstrip().startswith("ok") and "GOTOOLCHAIN=go1.26.8" in line for line in out.splitlines())


def test_macos_is_refused_with_a_clear_message(bin_dir: Path, tmp_path: Path) -> None:
    script(bin_dir, "uname", "echo Darwin")
    result = run(bin_dir, tmp_path)
    assert result.returncode == 2
    assert "macOS is not supported" in result.stdout and "Debian" in result.stdout


def test_everything_present_passes(tmp_path: Path) -> None:
    """On this machine (the project's own kind) the stack's prerequisites are all there."""
    env = {**os.environ, "STREAMFLOW_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(["bash", str(PREFLIGHT), "--brief"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all prerequisites found" in result.stdout
