"""The set-up scripts: `make up` installs only what the stack needs, `make test` adds the test tools;
steps are numbered, timed and show that they are moving; `make clean` works after a failed set-up."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STEPS = ROOT / "scripts" / "lib" / "steps.sh"

#: What only the tests need, and how each shows up in a script.
TEST_ONLY = {
    "kustomize/CRDs": "setup_k8s_tools.sh",
    "etcd/kube-apiserver/kubectl": "build_k8s_binaries.sh",
    "chromium": "chromium",
    "actionlint": "actionlint",
    "the dev venv": "venv-dev",
    "go": "go install",
}


def _code(path: Path) -> str:
    """The script without its comments."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_stack_setup_installs_no_test_tool() -> None:
    for script in ("setup.sh", "setup_portal.sh"):
        code = _code(ROOT / "scripts" / script)
        for what, marker in TEST_ONLY.items():
            assert marker not in code, f"scripts/{script} installs {what} ({marker!r}): that is test-only"


def test_test_setup_installs_every_test_tool() -> None:
    code = _code(ROOT / "scripts" / "setup_test_tools.sh") + _code(ROOT / "scripts" / "preflight.sh")
    for what, marker in TEST_ONLY.items():
        assert marker in code, f"the test set-up does not install {what} ({marker!r})"


def _rule(makefile: str, target: str) -> tuple[list[str], list[str]]:
    match = re.search(rf"^{re.escape(target)}:([^#\n]*)(?:##[^\n]*)?\n((?:\t[^\n]*\n)*)", makefile, re.MULTILINE)
    assert match, f"no rule for {target}"
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_make_up_depends_on_the_stack_setup_and_make_test_on_the_test_setup() -> None:
    makefile = (ROOT / "Makefile").read_text()
    up_deps, _ = _rule(makefile, "up")
    assert up_deps == ["setup"]
    _, setup_recipe = _rule(makefile, "setup")
    assert setup_recipe == ["@bash scripts/setup.sh"]
    test_deps, _ = _rule(makefile, "test")
    assert "setup-test" in test_deps
    setup_test_deps, setup_test_recipe = _rule(makefile, "setup-test")
    assert setup_test_deps == ["setup"] and setup_test_recipe == ["@bash scripts/setup_test_tools.sh"]
    for target in ("lint", "test-unit"):
        assert "setup-test" in _rule(makefile, target)[0], f"make {target} needs the dev venv"


def _steps(tmp_path: Path, body: str, heartbeat: int = 1) -> subprocess.CompletedProcess[str]:
    program = f"""set -euo pipefail
STATE={tmp_path}; STEP_HEARTBEAT_S={heartbeat}
source {STEPS}
{body}
"""
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, check=False)


def test_steps_are_numbered_with_the_expected_and_the_real_duration(tmp_path: Path) -> None:
    result = _steps(tmp_path, """steps_init setup 3
step_fresh "uv 0.13.9"
step_run "quick one" 5 true
step_run "slow one" 50 bash -c 'echo downloading thing-1; sleep 3.5; echo downloading thing-2'
""")
    out = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert out[0] == "[setup 1/3] uv 0.13.9: up to date"
    assert re.fullmatch(r"\[setup 2/3\] quick one: done in [01] s", out[1])  # over at once: one short line
    assert out[2].startswith("[setup 3/3] slow one (~50 s) ...")
    beats = [line for line in out if line.startswith("    ... slow one:")]
    assert beats, "a long step shows it is moving"
    assert "(~50 s expected)" in beats[0] and "| downloading thing-1" in beats[0]
    took = re.fullmatch(r"\[setup 3/3\] slow one: done in (\d+) s", out[-1])
    assert took and int(took.group(1)) >= 3


def test_a_failed_step_shows_the_end_of_its_log_and_fails(tmp_path: Path) -> None:
    result = _steps(tmp_path, """steps_init setup 1
step_run "maven" 20 bash -c 'seq -f "noise %g" 1 50; echo "Could not resolve foo:bar:1.0"; exit 7' || exit $?
echo not reached
""")
    assert result.returncode == 7
    assert re.search(r"maven: FAILED after \d+ s \(exit 7\)", result.stdout)
    assert "    | Could not resolve foo:bar:1.0" in result.stdout
    assert "noise 10" not in result.stdout  # the tail, not the whole log
    assert "not reached" not in result.stdout
    assert (tmp_path / "logs" / "setup" / "maven.log").read_text().count("noise") == 50


def test_make_clean_works_after_a_failed_setup(tmp_path: Path) -> None:
    """No venv (the set-up failed early) but a service left running: clean stops it and deletes the state."""
    state, install = tmp_path / "state", tmp_path / "install"
    (state / "run").mkdir(parents=True)
    install.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        ticks = (Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split())[19]
        (state / "run" / "kafka.pid").write_text(f'{{"pid": {sleeper.pid}, "start_ticks": {ticks}.0}}')
        (state / "run" / "stale.pid").write_text('{"pid": 1, "start_ticks": 12345.0}')  # a reused pid: left alone
        env = {"PATH": "/usr/bin:/bin", "STREAMFLOW_STATE_DIR": str(state), "STREAMFLOW_INSTALL_DIR": str(install)}
        result = subprocess.run(["make", "-s", "clean"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 10
        while sleeper.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sleeper.poll() is not None, "the process named by the pid file still runs"
        assert not state.exists()
        assert install.exists()  # another installation dir is kept
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
