#!/usr/bin/env bash
# `make clean`: stop every local service and Flink job, then delete the state dir. Works after a
# failed or partial set-up too (no venv, no pid files, nothing running): the CLI is used when it can
# run, and the pid files under $STATE/run are the safety net. Only processes StreamFlow started are
# signalled: a pid file records the pid and its start time, and a pid reused by another process is
# left alone.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${STREAMFLOW_STATE_DIR:-$ROOT/.streamflow}"
INSTALL="${STREAMFLOW_INSTALL_DIR:-$STATE}"   # venvs: kept when it is another folder
say() { printf '[clean] %s\n' "$*"; }

case "$(cd "$STATE" 2>/dev/null && pwd -P)" in
  /|"${HOME:-/}"|"$(cd "$ROOT" && pwd -P)") say "refusing to delete $STATE (set STREAMFLOW_STATE_DIR to a state dir)"; exit 2 ;;
esac
if [[ ! -d "$STATE" ]]; then say "nothing to clean: $STATE does not exist"; exit 0; fi

if [[ -x "$INSTALL/venvs/airflow/bin/python" ]]; then
  "$ROOT/bin/streamflow" down || say "streamflow down failed: stopping what the pid files name"
fi

# pid file: {"pid": N, "start_ticks": T}; T is field 22 of /proc/N/stat when N is still that process.
alive_pid() {
  local file="$1" pid ticks now
  pid="$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$file")"
  ticks="$(sed -n 's/.*"start_ticks": *\([0-9][0-9.]*\).*/\1/p' "$file")"
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  now="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $20}')"
  [[ "${ticks%.0}" == "$now" ]] || return 1
  echo "$pid"
}
shopt -s nullglob
for file in "$STATE"/run/*.pid; do
  pid="$(alive_pid "$file")" || continue
  say "stopping $(basename "$file" .pid) (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; }
done

rm -rf "$STATE"
say "deleted $STATE${STREAMFLOW_INSTALL_DIR:+ (the installation in $INSTALL is kept)}"
