"""Settings validation: a bad value fails with the name of the environment variable."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamflow.settings import (
    CRON_PRESETS,
    PLATFORM_VARIABLES,
    REPO_ROOT,
    Runtime,
    Settings,
    SettingsError,
    load_settings,
    read_or_create_secret,
    unknown_variables,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STREAMFLOW_"):
            monkeypatch.delenv(key)


def test_defaults_are_local_and_loopback(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path, postgres_password="pw")
    assert s.runtime is Runtime.LOCAL
    assert s.kafka_bootstrap == "127.0.0.1:59092"
    assert s.warehouse_dsn == "postgresql://streamflow:pw@127.0.0.1:55432/warehouse"  # pragma: allowlist secret
    assert s.warehouse_jdbc_url == "jdbc:postgresql://127.0.0.1:55432/warehouse"
    assert s.topics == ["transactions.raw", "fraud.alerts", "metrics.realtime", "dlq.errors"]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("STREAMFLOW_RUNTIME", "docker", "STREAMFLOW_RUNTIME"),
        ("STREAMFLOW_KAFKA_PORT", "not-a-port", "STREAMFLOW_KAFKA_PORT"),
        ("STREAMFLOW_KAFKA_PORT", "80", "STREAMFLOW_KAFKA_PORT"),
        ("STREAMFLOW_POSTGRES_PORT", "70000", "STREAMFLOW_POSTGRES_PORT"),
        ("STREAMFLOW_QUALITY_SCHEDULE", "every 15 minutes", "STREAMFLOW_QUALITY_SCHEDULE"),
        ("STREAMFLOW_TOPIC_DLQ", "dlq errors!", "STREAMFLOW_TOPIC_DLQ"),
        ("STREAMFLOW_ALERT_WEBHOOK_URL", "ftp://x", "STREAMFLOW_ALERT_WEBHOOK_URL"),
        ("STREAMFLOW_TOPIC_PARTITIONS", "0", "STREAMFLOW_TOPIC_PARTITIONS"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value)
    assert repr(value) in str(info.value) or value in str(info.value)


@pytest.mark.parametrize("unset", ["STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "STREAMFLOW_POSTGRES_PASSWORD"])
def test_kubernetes_runtime_without_connection_names_the_setting(monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    monkeypatch.setenv("STREAMFLOW_RUNTIME", "kubernetes")
    monkeypatch.setenv("STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("STREAMFLOW_POSTGRES_PASSWORD", "from-a-secret")  # pragma: allowlist secret
    monkeypatch.delenv(unset)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert unset in str(info.value)


def test_port_clash_names_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLOW_KAFKA_PORT", "55432")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "STREAMFLOW_KAFKA_PORT" in str(info.value)
    assert "STREAMFLOW_POSTGRES_PORT" in str(info.value)


def test_env_overrides_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLOW_RUNTIME", "kubernetes")
    monkeypatch.setenv("STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("STREAMFLOW_POSTGRES_PASSWORD", "from-a-secret")  # pragma: allowlist secret
    monkeypatch.setenv("STREAMFLOW_TOPIC_PARTITIONS", "6")
    s = load_settings()
    assert s.runtime is Runtime.KUBERNETES
    assert s.topic_partitions == 6


def test_generated_secret_is_owner_only_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pw"
    first = read_or_create_secret(path)
    assert len(first) >= 24
    assert read_or_create_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_password_comes_from_state_dir_when_not_set(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    password = s.resolved_postgres_password
    assert (tmp_path / "secrets" / "postgres_password").read_text() == password
    assert password in s.warehouse_dsn


# --- unknown variables --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("STREAMFLOW_KAFKA_PROT", "STREAMFLOW_KAFKA_PORT"), ("STREAMFLOW_STATEDIR", "STREAMFLOW_STATE_DIR"),
     ("STREAMFLOW_POSTGRESS_PASSWORD", "STREAMFLOW_POSTGRES_PASSWORD"),
     ("streamflow_airflow_prot", "STREAMFLOW_AIRFLOW_PORT"),   # read case-insensitively, checked the same way
     ("STREAMFLOW_QUALITY_SCHEDUEL", "STREAMFLOW_QUALITY_SCHEDULE")],
)
def test_unknown_variable_is_named_with_the_closest_setting(monkeypatch: pytest.MonkeyPatch, typo: str,
                                                            suggestion: str) -> None:
    monkeypatch.setenv(typo, "1")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert f"{typo} is not a StreamFlow setting (did you mean {suggestion}?)" in str(info.value)


def test_unknown_variable_without_a_close_match_points_at_the_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLOW_ZZZ", "1")
    with pytest.raises(SettingsError, match=r"STREAMFLOW_ZZZ is not a StreamFlow setting \(see README"):
        load_settings()


def test_unknown_keyword_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="STREAMFLOW_KAFKA_PROT"):
        load_settings(state_dir=tmp_path, kafka_prot=1)


def test_platform_variables_are_not_settings_and_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not {name.removeprefix("STREAMFLOW_").lower() for name in PLATFORM_VARIABLES} & set(Settings.model_fields)
    for name in PLATFORM_VARIABLES:
        monkeypatch.setenv(name, "x")
    load_settings(state_dir=tmp_path)


def _platform_set_variables(tmp_path: Path) -> dict[str, str]:
    """Every STREAMFLOW_* variable the platform itself sets for the processes it starts: Airflow's
    environment (plus the dbt profile variables it passes on), the Flink jobs' environment (locally and
    in the FlinkDeployments), the generator pod, and the Airflow chart's values."""
    import yaml

    from streamflow.flink_spec import load_all
    from streamflow.runtime import flink_local_config
    from streamflow.stack.airflow import airflow_env

    settings = load_settings(state_dir=tmp_path, postgres_password="pw")
    names: dict[str, str] = {}
    names.update({k: v for k, v in airflow_env(settings).items() if k.upper().startswith("STREAMFLOW_")})
    for spec in load_all().values():
        names.update({k: "x" for k in flink_local_config.local_job_env(spec, settings) if k.startswith("STREAMFLOW_")})
        names.update({v.name: "x" for v in spec.env if v.name.startswith("STREAMFLOW_")})
    k8s = REPO_ROOT / "k8s"
    values = yaml.safe_load((k8s / "helm" / "airflow-values.yaml").read_text())
    names.update({e["name"]: "x" for e in values.get("env", []) if e["name"].startswith("STREAMFLOW_")})
    names.update({e["envName"]: "x" for e in values.get("secret", []) if e["envName"].startswith("STREAMFLOW_")})
    pod = yaml.safe_load((k8s / "base" / "generator" / "pod-template.yaml").read_text())
    for container in pod["spec"]["containers"]:
        names.update({e["name"]: "x" for e in container.get("env", []) if e["name"].startswith("STREAMFLOW_")})
    return names


def test_nothing_the_platform_sets_itself_trips_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = _platform_set_variables(tmp_path)
    assert {"STREAMFLOW_WAREHOUSE_PASSWORD", "STREAMFLOW_EVENT_SCHEMA", "STREAMFLOW_STATE_DIR"} <= set(names)
    assert unknown_variables(dict.fromkeys(names, "x"), set(Settings.model_fields)) == []


def test_the_helper_isolation_variables_are_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"STREAMFLOW_STATE_DIR": str(tmp_path), "STREAMFLOW_POSTGRES_PORT": "55544",
                        "STREAMFLOW_KAFKA_PORT": "59141", "STREAMFLOW_KAFKA_CONTROLLER_PORT": "59142",
                        "STREAMFLOW_AIRFLOW_PORT": "8140", "STREAMFLOW_FLINK_REST_PORT_BASE": "18140"}.items():
        monkeypatch.setenv(name, value)
    assert load_settings().kafka_port == 59141


# Not inside a longer name: AIRFLOW_CONN_STREAMFLOW_POSTGRES is Airflow's variable for a connection id.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_])STREAMFLOW_[A-Za-z0-9_]+")


def test_every_streamflow_variable_in_the_repo_is_a_setting_or_a_documented_platform_variable() -> None:
    """A new STREAMFLOW_* knob (a script, a test, a profile) must be added to Settings or to
    PLATFORM_VARIABLES with its owner, else every process inheriting it would refuse to start."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    valid = {f"STREAMFLOW_{f.upper()}" for f in Settings.model_fields} | set(PLATFORM_VARIABLES)
    found: dict[str, str] = {}
    for name in files:
        path = REPO_ROOT / name
        if path.resolve() == Path(__file__).resolve():   # this file's deliberate typos
            continue
        if path.suffix not in {".py", ".sh", ".yml", ".yaml", ".sql", ".md", ".env", ".toml", ".cfg", ".j2", ""} \
                or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for match in _TOKEN.finditer(text):
            token = match.group(0)
            if token.endswith("_") or token.upper() != token:   # `STREAMFLOW_WAREHOUSE_*`, a prefix mention
                continue
            found.setdefault(token, name)
    assert len(found) > 30
    unknown = {token: where for token, where in found.items() if token not in valid}
    assert unknown == {}, ("add these to Settings or to PLATFORM_VARIABLES (streamflow/settings_types.py), "
                           "with who sets/reads them")


# --- schedules ------------------------------------------------------------------------------------
def test_schedule_presets_are_airflows() -> None:
    from airflow.sdk.definitions.timetables._cron import CRON_PRESETS as AIRFLOW_PRESETS

    assert CRON_PRESETS == AIRFLOW_PRESETS
    for preset in [*AIRFLOW_PRESETS, "@once"]:
        assert load_settings(quality_schedule=preset).quality_schedule == preset


@pytest.mark.parametrize(
    ("expr", "reason"),
    [("@hourli", "did you mean '@hourly'"), ("@reboot", "unknown schedule preset"),
     ("*/15 * * * * *", "6 fields"), ("* * * *", "4 fields"), ("61 * * * *", "not a valid cron"),
     ("*/0 * * * *", "not a valid cron"), ("0 0 * * 8", "not a valid cron"), ("0 0 30 2 *", "never fires"),
     ("0 25 * * *", "not a valid cron"), ("every 15 minutes", "3 fields")],
)
def test_bad_schedule_names_the_variable_and_why(monkeypatch: pytest.MonkeyPatch, expr: str, reason: str) -> None:
    monkeypatch.setenv("STREAMFLOW_QUALITY_SCHEDULE", expr)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "STREAMFLOW_QUALITY_SCHEDULE" in str(info.value) and reason in str(info.value)


_CRON_FIELDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_OUT_OF_RANGE = [60, 24, 32, 13, 8]   # day-of-week 7 is Sunday, like 0


@st.composite
def _cron_field(draw: st.DrawFn, low: int, high: int) -> str:
    kind = draw(st.sampled_from(["*", "n", "range", "step", "list"]))
    n = st.integers(low, high)
    if kind == "*":
        return "*"
    if kind == "n":
        return str(draw(n))
    if kind == "range":
        a, b = sorted((draw(n), draw(n)))
        return f"{a}-{b}"
    if kind == "step":
        return f"*/{draw(st.integers(1, high))}"
    return ",".join(str(v) for v in sorted(set(draw(st.lists(n, min_size=1, max_size=4)))))


@st.composite
def _cron(draw: st.DrawFn) -> str:
    return " ".join(draw(_cron_field(lo, hi)) for lo, hi in _CRON_FIELDS)


@settings(max_examples=150, deadline=None, database=None)
@given(expr=_cron(), bad_field=st.integers(0, 4), offset=st.integers(1, 40))
def test_cron_accepted_iff_airflow_accepts_it(expr: str, bad_field: int, offset: int) -> None:
    """Property: what the settings accept, Airflow's own timetable validates and can schedule; a field
    pushed out of its range is refused with the variable's name."""
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    try:
        accepted = load_settings(quality_schedule=expr).quality_schedule == expr
    except SettingsError as error:
        assert "STREAMFLOW_QUALITY_SCHEDULE" in str(error)
        assert "never fires" in str(error)   # the only reason a well-formed expression may be refused
        accepted = False
    if accepted:
        CronTriggerTimetable(expr, timezone="UTC").validate()
    fields = expr.split()
    fields[bad_field] = str(_OUT_OF_RANGE[bad_field] + offset - 1)
    with pytest.raises(SettingsError, match="STREAMFLOW_QUALITY_SCHEDULE"):
        load_settings(quality_schedule=" ".join(fields))


# --- passwords and loopback ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_password_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("STREAMFLOW_POSTGRES_PASSWORD", value)
    with pytest.raises(SettingsError) as info:
        load_settings(state_dir=tmp_path)
    assert "STREAMFLOW_POSTGRES_PASSWORD: is set but empty" in str(info.value)
    assert not (tmp_path / "secrets").exists()


def test_unset_password_is_generated(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    assert s.postgres_password is None and len(s.resolved_postgres_password) >= 24


@settings(max_examples=200, deadline=None, database=None)
@given(address=st.ip_addresses(v=4))
def test_host_accepts_exactly_ipv4_loopback(address: object) -> None:
    text = str(address)
    if text.startswith("127."):
        assert load_settings(host=text).host == text
    else:
        with pytest.raises(SettingsError, match="STREAMFLOW_HOST: not a loopback address"):
            load_settings(host=text)


@pytest.mark.parametrize(("value", "reason"), [
    ("0.0.0.0", "not a loopback"),  # noqa: S104 - the value being refused
    ("::1", "IPv6 loopback is not supported"), ("example.org", "not a loopback"), ("", "not a loopback"),
])
def test_host_refusals_say_why(monkeypatch: pytest.MonkeyPatch, value: str, reason: str) -> None:
    monkeypatch.setenv("STREAMFLOW_HOST", value)
    with pytest.raises(SettingsError, match=f"STREAMFLOW_HOST: {reason}"):
        load_settings()


def test_localhost_is_loopback() -> None:
    assert load_settings(host="localhost", postgres_host="localhost").kafka_bootstrap == "localhost:59092"


def test_postgres_host_is_loopback_only_for_the_local_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMFLOW_POSTGRES_HOST", "streamflow-warehouse-rw.streamflow-data.svc")
    with pytest.raises(SettingsError, match=r"STREAMFLOW_POSTGRES_HOST \(with STREAMFLOW_RUNTIME=local\)"):
        load_settings()
    monkeypatch.setenv("STREAMFLOW_RUNTIME", "kubernetes")
    monkeypatch.setenv("STREAMFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("STREAMFLOW_POSTGRES_PASSWORD", "from-a-secret")  # pragma: allowlist secret
    assert load_settings().postgres_host == "streamflow-warehouse-rw.streamflow-data.svc"


# --- installation vs state ----------------------------------------------------------------------
def test_install_dir_defaults_to_the_state_dir(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    assert s.install_dir == tmp_path and s.venvs_dir == tmp_path / "venvs" and s.jars_dir == tmp_path / "jars"


def test_install_dir_holds_what_runs_and_state_dir_what_a_stack_is(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path / "state", install_dir=tmp_path / "install")
    installed = [s.venvs_dir, s.jars_dir, s.tools_dir, s.portal_assets_dir, s.dbt_executable, s.venv_python("x"),
                 s.dbt_target_dir]   # the manifest `streamflow prepare` parses from the repo's dbt project
    assert all((tmp_path / "install") in p.parents for p in installed)
    stateful = [s.logs_dir, s.run_dir, s.secrets_dir, s.airflow_home, s.dbt_artifacts, s.dbt_docs_dir]
    assert all((tmp_path / "state") in p.parents for p in stateful)


def test_explicit_dbt_artifacts_dir_holds_the_manifest_too(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path, install_dir=tmp_path / "i", dbt_artifacts_dir=str(tmp_path / "a"))
    assert s.dbt_target_dir == tmp_path / "a" / "target" and s.dbt_docs_dir == tmp_path / "a" / "docs"
