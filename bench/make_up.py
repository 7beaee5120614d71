"""`make up` as a new user runs it: a fresh clone, cold (empty state dir and download caches) to a
populated gold layer, then warm three times (`make down`, then `make up` again: everything installed,
stack stopped; the bootstrapped pipeline is resumed, ADR 0014 - the bench fails if it was not).

Goals (issue 14): cold <= 600 s, warm <= 90 s (the slowest warm run counts). Every step is timed from
`make up`'s own output: the set-up's numbered steps (``[setup 3/11] venv 'flink' ... done in 47 s``),
the stack start (``[up 1/3]``) and bootstrap_pipeline (``[up 2/3]``). What the clone holds: the
repository's HEAD plus the working tree's uncommitted changes (so a change is measured before it is
committed). It runs on free ports and its own state dir, never touching a person's stack; Maven's and
npm's caches are fresh folders too, so "cold" downloads every wheel, jar and npm package again. Debian
packages are not uninstalled: a machine without them adds their apt-get time (scripts/preflight.sh
installs them).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from streamflow.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
GOLD_TABLES = ("dim_customer", "dim_store", "fct_transactions", "fct_fraud_alerts", "agg_hourly_sales",
               "agg_daily_fraud")
STEP_DONE = re.compile(r"^\[setup (\d+)/(\d+)\] (.+?): (?:done in (\d+) s|up to date)$")
STEP_DONE_INLINE = re.compile(r"^\[setup (\d+)/(\d+)\] (.+?) \(~\d+ s\) \.\.\. done in (\d+) s$")


#: Warm runs (each `make down` then `make up`); the figure is the slowest: one lucky run met the goal before.
WARM_RUNS = 3


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports() -> dict[str, str]:
    """Ports for every listener of a stack, all free now (Flink: REST base..base+2 and RPC +1000)."""
    rng = random.Random()
    names = ["STREAMFLOW_POSTGRES_PORT", "STREAMFLOW_KAFKA_PORT", "STREAMFLOW_KAFKA_CONTROLLER_PORT",
             "STREAMFLOW_AIRFLOW_PORT", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
             "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]
    chosen: dict[str, str] = {}
    while len(chosen) < len(names):
        port = rng.randrange(20000, 30000)
        if str(port) not in chosen.values() and _free(port):
            chosen[names[len(chosen)]] = str(port)
    while True:
        base = rng.randrange(20000, 29000)
        block = [base + i for i in range(3)] + [base + 1000 + i for i in range(3)]
        if not {str(p) for p in block} & set(chosen.values()) and all(_free(p) for p in block):
            chosen["STREAMFLOW_FLINK_REST_PORT_BASE"] = str(base)
            return chosen


def fresh_clone(target: Path) -> int:
    """``git clone`` of HEAD, then the working tree's uncommitted changes on top; returns their count."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)], check=True)
    changed = subprocess.run(["git", "ls-files", "--modified", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode().split("\0")
    deleted = set(subprocess.run(["git", "ls-files", "--deleted", "-z"], cwd=ROOT, capture_output=True,
                                 check=True).stdout.decode().split("\0"))
    count = 0
    for name in filter(None, changed):
        if name.startswith(".sf-") or name in deleted or not (ROOT / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
        count += 1
    for name in filter(None, deleted):
        (target / name).unlink(missing_ok=True)
        count += 1
    return count


class MakeFailed(RuntimeError):
    """`make` exited non-zero; carries what it printed so far (the phases it got through are still timed)."""

    def __init__(self, message: str, elapsed: float, lines: list[tuple[float, str]]) -> None:
        super().__init__(message)
        self.elapsed = elapsed
        self.lines = lines


def timed_make(clone: Path, target: str, env: dict[str, str], log: Path) -> tuple[float, list[tuple[float, str]]]:
    """Run ``make <target>`` in the clone; return its wall time and its output lines with arrival times."""
    began = time.monotonic()
    lines: list[tuple[float, str]] = []
    with open(log, "a") as out:
        out.write(f"\n===== make {target}\n")
        proc = subprocess.Popen(["make", target], cwd=clone, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - began, line.rstrip("\n")))
            out.write(line)
            out.flush()
        code = proc.wait()
    if code != 0:
        tail = "\n".join(text for _, text in lines[-30:])
        raise MakeFailed(f"make {target} failed (exit {code}) in {clone}; log {log}:\n{tail}",
                         time.monotonic() - began, lines)
    return time.monotonic() - began, lines


def phases(lines: list[tuple[float, str]], total: float) -> dict[str, float]:
    """Seconds per phase of `make up` (set-up, stack, bootstrap, status) from its ``[up N/3]`` markers;
    a phase that was still running when `make` stopped ends at ``total``, one never reached is left out."""
    starts = {"setup": 0.0}
    labels = {"[up 1/3]": "stack", "[up 2/3]": "bootstrap", "[up 3/3]": "status"}
    for at, text in lines:
        for prefix, name in labels.items():
            if text.startswith(prefix) and name not in starts:
                starts[name] = at
    order = [name for name in ("setup", "stack", "bootstrap", "status") if name in starts]
    ends = [starts[name] for name in order[1:]] + [total]
    return {name: end - starts[name] for name, end in zip(order, ends, strict=True)}


def setup_steps(lines: list[tuple[float, str]]) -> dict[str, int]:
    """``{"venv 'flink'": 47, ...}`` from the set-up's step lines (0 for an up-to-date step)."""
    steps: dict[str, int] = {}
    for _, text in lines:
        match = STEP_DONE.match(text) or STEP_DONE_INLINE.match(text)
        if match:
            label = re.sub(r" \((?:dbt parse|Maven|npm ci|go install)\)$", "", match.group(3))
            steps[label] = int(match.group(4) or 0)
    return steps


def order_last(measured: dict[str, float]) -> str:
    return list(measured)[-1] if measured else ""


def gold_rows(clone: Path, ports: dict[str, str]) -> dict[str, int]:
    import psycopg
    from psycopg import sql

    settings = load_settings(state_dir=clone / ".streamflow", postgres_port=int(ports["STREAMFLOW_POSTGRES_PORT"]))
    counts = {}
    with psycopg.connect(settings.warehouse_dsn, connect_timeout=10) as conn:
        for table in GOLD_TABLES:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("gold", table))).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def run() -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="sf-make-up-"))
    clone, log = work / "streamflow", work / "make_up.log"
    ports = free_ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMFLOW_", "AIRFLOW__", "UV_"))}
    env.update(ports)
    # Cold downloads: Maven's and npm's caches live outside the state dir, so they get fresh ones too.
    env["MAVEN_OPTS"] = f"-Dmaven.repo.local={work / 'm2'}"
    env["npm_config_cache"] = str(work / "npm")
    load = os.getloadavg()[0]
    overlay = fresh_clone(clone)
    figures: list[dict[str, Any]] = []
    complete = False
    note = (f"fresh clone + {overlay} uncommitted files; load average {load:.1f} at start on a machine "
            "shared with other work; log: " + str(log))
    try:
        try:
            cold, cold_lines = timed_make(clone, "up", env, log)
        except MakeFailed as failed:  # keep what was measured: the phases it got through
            got = phases(failed.lines, failed.elapsed)
            figures.append({"figure": "cold `make up`, fresh clone to populated gold", "value": "failed",
                            "unit": "", "goal": "<= 600", "notes": f"{note}; {str(failed).splitlines()[0]}",
                            "phases_s": {k: round(v, 1) for k, v in got.items()},
                            "setup_steps_s": setup_steps(failed.lines)})
            figures += [{"figure": f"cold `make up`: {name}" + ("" if name != order_last(got) else " (failed)"),
                         "value": round(seconds, 1), "unit": "s", "goal": "report"} for name, seconds in got.items()]
            return figures
        cold_phases = phases(cold_lines, cold)
        gold = gold_rows(clone, ports)
        figures.append({"figure": "cold `make up`, fresh clone to populated gold", "value": round(cold, 1),
                        "unit": "s", "goal": "<= 600", "notes": note,
                        "phases_s": {k: round(v, 1) for k, v in cold_phases.items()},
                        "setup_steps_s": setup_steps(cold_lines), "gold_rows": gold})
        for name in ("setup", "stack", "bootstrap"):
            figures.append({"figure": f"cold `make up`: {name}", "value": round(cold_phases[name], 1), "unit": "s",
                            "goal": "report"})
        figures.append({"figure": "gold rows after cold `make up` (fct_transactions)",
                        "value": gold["fct_transactions"], "unit": "rows", "goal": ">= 1"})
        runs: list[tuple[float, float, dict[str, float]]] = []   # (down, up, phases) per warm run
        for _ in range(WARM_RUNS):
            down, _ = timed_make(clone, "down", env, log)
            warm, warm_lines = timed_make(clone, "up", env, log)
            resumed = (any("Flink jobs resumed and healthy" in text for _, text in warm_lines)
                       and any(text.startswith("already bootstrapped") for _, text in warm_lines))
            warm_gold = gold_rows(clone, ports)
            if not resumed or warm_gold["fct_transactions"] < gold["fct_transactions"]:
                raise RuntimeError(f"warm `make up` did not resume the bootstrapped pipeline (resumed={resumed}, "
                                   f"gold {gold['fct_transactions']} -> {warm_gold['fct_transactions']}); log {log}")
            runs.append((down, warm, phases(warm_lines, warm)))
        down, warm, warm_phases = max(runs, key=lambda run: run[1])   # the goal holds only if the slowest meets it
        figures.append({"figure": "warm `make up` (after `make down`, everything installed)", "value": round(warm, 1),
                        "unit": "s", "goal": "<= 90", "phases_s": {k: round(v, 1) for k, v in warm_phases.items()},
                        "runs_s": [round(run[1], 1) for run in runs],
                        "notes": f"the slowest of {WARM_RUNS} warm runs (each after `make down`, which took "
                        f"{', '.join(f'{run[0]:.1f}' for run in runs)} s); the stack starts and the three Flink jobs "
                        "resume from their checkpoints (Airflow starts once they are submitted) until healthy "
                        "(ADR 0014; no second bootstrap_pipeline run); gold "
                        f"still {warm_gold['fct_transactions']:,} rows"})
        for name in ("setup", "stack", "bootstrap"):
            figures.append({"figure": f"warm `make up`: {name}", "value": round(warm_phases[name], 1), "unit": "s",
                            "goal": "report"})
        complete = True
    finally:
        subprocess.run(["make", "down"], cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, timeout=600)
        if complete:  # kept (with its logs) when something failed; the log always stays
            for part in (clone, work / "m2", work / "npm"):
                shutil.rmtree(part, ignore_errors=True)
    return figures
