"""Settings validation: a bad value fails with the name of the environment variable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from streamflow.settings import Runtime, SettingsError, load_settings, read_or_create_secret


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
