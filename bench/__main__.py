"""`python -m bench [name ...]` — run benchmarks, store their figures, regenerate BENCHMARKS.md.

Each benchmark is a module ``bench/<name>.py`` with ``run() -> list[dict]``; every dict has at
least ``figure``, ``value``, ``unit`` and ``goal``. The runner adds ``command``, ``machine`` and
``date`` and writes ``bench/results/<name>.json``. Benchmarks are not part of `make test`.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

from bench.report import BENCH_DIR, machine_description, render_markdown

SKIP = {"__init__", "__main__", "report"}


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_"))


def run_one(name: str) -> list[dict[str, object]]:
    module = importlib.import_module(f"bench.{name}")
    began = time.monotonic()
    figures = list(module.run())
    stamp = {
        "command": f"make bench B={name}",
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    results = [{**figure, **{k: v for k, v in stamp.items() if k not in figure}} for figure in figures]
    out = BENCH_DIR / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"=== bench {name}", flush=True)
        try:
            for figure in run_one(name):
                print(f"  {figure['figure']}: {figure['value']} {figure['unit']} (goal {figure['goal']})", flush=True)
        except Exception as error:
            print(f"  FAILED: {error!r}", file=sys.stderr)
            status = 1
    (BENCH_DIR / "BENCHMARKS.md").write_text(render_markdown())
    print(f"wrote {BENCH_DIR / 'BENCHMARKS.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
