# shellcheck shell=bash
# Shared by scripts/setup.sh and scripts/setup_test_tools.sh: numbered steps that say how long they
# are expected to take, show that they are moving, and keep their (noisy) output in a log that is
# printed when they fail. Why: a cold set-up downloads ~2 GB and builds Go tools; minutes of silence
# look like a hang, and minutes of Maven/uv/go chatter hide the one line that matters.
#
#   steps_init setup 9                      # prefix, number of steps
#   step_fresh "venv 'dbt'"                  # "[setup 3/9] venv 'dbt': up to date"
#   step_run "venv 'flink'" 50 cmd args...   # "[setup 4/9] venv 'flink' (~50 s) ... done in 47 s"
#
# While a step runs, a heartbeat line every STEP_HEARTBEAT_S seconds shows the elapsed time and the
# last line of the step's log. Logs: $STATE/logs/setup/<step>.log.

STEP_HEARTBEAT_S="${STEP_HEARTBEAT_S:-15}"
STEP_QUIET_S="${STEP_QUIET_S:-2}"
_STEP_PREFIX=setup
_STEP_TOTAL=0
_STEP_N=0

steps_init() { _STEP_PREFIX="$1"; _STEP_TOTAL="$2"; _STEP_N=0; }

say() { printf '[%s] %s\n' "$_STEP_PREFIX" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$_STEP_PREFIX" "$*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
fresh() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp() { echo "$2" > "$STAMPS/$1"; }
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }  # version_ge 1.26.8 1.26

# next_step: advance the counter and set STEP_TAG ("[setup 3/9]"); no subshell, so the count sticks.
next_step() { _STEP_N=$((_STEP_N + 1)); STEP_TAG="$(printf '[%s %d/%d]' "$_STEP_PREFIX" "$_STEP_N" "$_STEP_TOTAL")"; }

step_fresh() { next_step; printf '%s %s: up to date\n' "$STEP_TAG" "$1"; }

_step_log() {  # label -> its log file (emptied)
  local slug
  slug="$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '-' | tr -s '-' | sed 's/-$//')"
  mkdir -p "$STATE/logs/setup"
  : > "$STATE/logs/setup/$slug.log"
  echo "$STATE/logs/setup/$slug.log"
}

# _step_watch TAG LABEL EXPECTED PID START LOG [NOTE]: wait for PID with a heartbeat; print the result.
_step_watch() {
  local tag="$1" label="$2" expected="$3" pid="$4" start="$5" logf="$6" note="${7:-}"
  local rc now shown=0 beats=0 last
  # The first seconds at a fine grain (quick steps stay quick), then once a second.
  for _ in $(seq 1 $((STEP_QUIET_S * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  while kill -0 "$pid" 2>/dev/null; do
    now="$(date +%s)"
    if ((shown == 0)); then printf '%s %s (~%s s%s) ...' "$tag" "$label" "$expected" "$note"; shown=1; fi
    if (( now - start >= (beats + 1) * STEP_HEARTBEAT_S )); then
      beats=$(( (now - start) / STEP_HEARTBEAT_S ))
      ((shown == 1)) && printf '\n' && shown=2
      last="$(tail -n 1 "$logf" 2>/dev/null | tr -d '\r' | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-110)"
      printf '    ... %s: %d s elapsed (~%s s expected)%s\n' "$label" "$((now - start))" "$expected" "${last:+ | $last}"
    fi
    sleep 1
  done
  rc=0
  wait "$pid" || rc=$?
  local took=$(( $(date +%s) - start ))
  if ((shown != 1)); then printf '%s %s: ' "$tag" "$label"; else printf ' '; fi
  if (( rc == 0 )); then
    printf 'done in %d s\n' "$took"
  else
    printf 'FAILED after %d s (exit %d); last lines of %s:\n' "$took" "$rc" "$logf"
    tail -n 30 "$logf" | sed 's/^/    | /'
  fi
  return "$rc"
}

# step_run LABEL EXPECTED_SECONDS CMD...: run CMD with its output in a log; heartbeat while it runs;
# on failure print the log's tail and return CMD's exit code (callers `|| die` with the fix).
# A step that is over within STEP_QUIET_S (a tool's own "nothing to do" path) prints one short line.
step_run() {
  local label="$1" expected="$2"; shift 2
  local logf start
  next_step
  logf="$(_step_log "$label")"
  start="$(date +%s)"
  "$@" >>"$logf" 2>&1 &
  _step_watch "$STEP_TAG" "$label" "$expected" "$!" "$start" "$logf"
}

# Network-bound steps (Maven, npm) run alongside CPU-bound ones (venvs): start them early, then wait
# for each in its numbered place.
#   step_bg_start KEY LABEL CMD...    (prints nothing)
#   step_bg_wait KEY EXPECTED_SECONDS ("[setup 8/11] jars 'kafka' (~25 s, started 140 s ago) ... done in 61 s")
declare -A _BG_PID=() _BG_START=() _BG_LOG=() _BG_LABEL=()
# A set-up that stops early (a failed step, Ctrl-C) stops the background steps it started, and their
# children (mvn, npm): nothing keeps downloading behind the user's back.
_bg_cleanup() {
  local pid
  for pid in "${_BG_PID[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
}
trap _bg_cleanup EXIT
step_bg_start() {
  local key="$1" label="$2"; shift 2
  _BG_LABEL[$key]="$label"
  _BG_LOG[$key]="$(_step_log "$label")"
  _BG_START[$key]="$(date +%s)"
  "$@" >>"${_BG_LOG[$key]}" 2>&1 &
  _BG_PID[$key]=$!
}
step_bg_wait() {
  local key="$1" expected="$2" ago
  next_step
  ago=$(( $(date +%s) - ${_BG_START[$key]} ))
  _step_watch "$STEP_TAG" "${_BG_LABEL[$key]}" "$expected" "${_BG_PID[$key]}" "${_BG_START[$key]}" \
    "${_BG_LOG[$key]}" ", started ${ago} s ago alongside the steps above"
}

# as_root CMD...: run CMD as root: directly when we are root, through sudo otherwise. Never demands
# root for anything but system packages.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else
    printf 'needs root: run as root or install sudo, then: %s\n' "$*" >&2
    return 1
  fi
}

# apt_install PKG...: Debian packages, non-interactive; `apt-get update` only when the first try
# cannot find a package (a fresh container has empty lists).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
  fi
}

# The interpreter the venvs are built with: recorded by scripts/setup.sh (python3.11 from the system,
# or one uv installed when the system has none).
resolved_python() {
  if [[ -n "${STREAMFLOW_PYTHON:-}" ]]; then echo "$STREAMFLOW_PYTHON"; return; fi
  if [[ -s "$STATE/tools/python-path" ]]; then cat "$STATE/tools/python-path"; return; fi
  echo python3.11
}

# build_venv NAME WITH_REPO LOCK...: one venv from its locks with uv (progress to the step's log).
build_venv() {
  local name="$1" with_repo="$2"; shift 2
  local venv="$STATE/venvs/$name" python site
  python="$(resolved_python)"
  "$UV" venv --allow-existing --python "$python" "$venv"
  # --compile-bytecode: every Airflow, dbt and PyFlink process imports thousands of modules. Without
  # .pyc files each start compiles them again whenever the environment says PYTHONDONTWRITEBYTECODE
  # (CI images and this project's own machines do), and the very first start always does.
  "$UV" pip sync --compile-bytecode --python "$venv/bin/python" "$@"
  if [[ "$with_repo" == 1 ]]; then
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$ROOT" > "$site/streamflow_repo.pth"
  fi
}

# venv_key NAME LOCK...: what the venv's stamp holds (locks + interpreter version + how it is built:
# "pyc" since venvs are installed with their bytecode, so older venvs are synced again once).
venv_key() {
  local python
  python="$(resolved_python)"
  echo "$(hash_of "$@")-$("$python" -V 2>&1 | tr -d ' ')-pyc"
}
