#!/usr/bin/env bash
# Runs the whole suite: the Flink job logic inside the Flink environment, everything else in the dev
# environment (which starts its own local stack once per pytest session: state in
# <STREAMFLOW_STATE_DIR or .streamflow>/test-stack, free ports, never the stack of `make up`; see
# tests/stack_isolation.py). pytest's exit code 5 ("no tests collected") is turned into a failure: a
# suite that ran nothing must never look green.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${STREAMFLOW_INSTALL_DIR:-${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}}/venvs"
status=0

run() {
  local label="$1"; shift
  echo "=== $label: $*"
  "$@"
  local rc=$?
  if [[ $rc -eq 5 ]]; then echo "=== $label: no tests were collected - failing" >&2; rc=1; fi
  [[ $rc -ne 0 ]] && status=1
  return 0
}

if [[ -d tests/flink ]]; then
  run "flink job logic" "$VENV/flink/bin/python" -m pytest tests/flink -q -p no:cacheprovider --confcutdir=tests/flink
fi
if [[ -d tests/flink_runtime ]]; then
  run "flink jobs on a mini cluster" "$VENV/flink/bin/python" -m pytest tests/flink_runtime -q -p no:cacheprovider \
    --confcutdir=tests/flink_runtime
fi
# --durations: where the suite's time goes, printed by every run (CI included)
run "unit, integration, e2e" "$VENV/dev/bin/python" -m pytest tests --ignore=tests/flink --ignore=tests/flink_runtime \
  -q -p no:cacheprovider --durations=40 "$@"
# Leave no service behind after the suite (the fixtures stop what they started; this is the safety net
# for a session killed before its teardown). Only the test stack's own pid files are read.
"$VENV/dev/bin/python" -m tests.stack_isolation stop || status=1
exit $status
