"""Option parsing: flags over GENERATOR_* env over defaults; errors name the flag and the env var."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.cli import EXIT_CONFIG, main
from generator.config import DEFAULT_TOPIC, ConfigError, parse_config

NOW = datetime(2026, 11, 22, 7, 0, 0, 123456, tzinfo=UTC)


def parse(argv: list[str], env: dict[str, str] | None = None):
    return parse_config(argv, env or {}, now=lambda: NOW)


def test_defaults() -> None:
    config = parse(["--bootstrap-servers", "k:9092"])
    assert (config.topic, config.events_per_second, config.fraud_rate, config.customers, config.stores,
            config.malformed_rate) == (DEFAULT_TOPIC, 100.0, 0.02, 1000, 100, 0.0)
    assert config.total_events is None and config.duration_seconds is None and not config.bounded
    assert config.start_time == datetime(2026, 11, 22, 7, 0, 0, 123000, tzinfo=UTC)
    assert config.uses_kafka and config.ledger is None
    assert not config.seed_was_given and 0 <= config.seed < 2**31


def test_env_is_used_and_flag_wins() -> None:
    env = {"GENERATOR_BOOTSTRAP_SERVERS": "env:9092", "GENERATOR_TOPIC": "from-env", "GENERATOR_FRAUD_RATE": "0.1",
           "GENERATOR_CUSTOMERS": "50", "GENERATOR_SEED": "9", "GENERATOR_LEDGER": "/tmp/l.jsonl"}
    config = parse(["--topic", "from-flag", "--customers", "70"], env)
    assert config.bootstrap_servers == "env:9092" and config.fraud_rate == 0.1 and config.seed == 9
    assert config.topic == "from-flag" and config.customers == 70 and config.ledger == Path("/tmp/l.jsonl")
    assert config.seed_was_given


def test_dry_run_and_output_need_no_broker() -> None:
    assert parse(["--dry-run"]).output == "-"
    assert parse([], {"GENERATOR_DRY_RUN": "true"}).output == "-"
    assert parse(["--output", "/tmp/x.jsonl"]).output == "/tmp/x.jsonl"
    assert not parse(["--dry-run"]).uses_kafka


def test_start_time_parsing() -> None:
    config = parse(["--dry-run", "--start-time", "2026-01-02T03:04:05.678Z"])
    assert config.start_time == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert parse(["--dry-run", "--start-time", "2026-01-02T04:04:05+01:00"]).start_time.hour == 3


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        ([], {}, "--bootstrap-servers / GENERATOR_BOOTSTRAP_SERVERS"),
        (["--dry-run", "--events-per-second", "-1"], {}, "--events-per-second / GENERATOR_EVENTS_PER_SECOND"),
        (["--dry-run"], {"GENERATOR_EVENTS_PER_SECOND": "fast"}, "--events-per-second / GENERATOR_EVENTS_PER_SECOND"),
        (["--dry-run", "--total-events", "0"], {}, "--total-events / GENERATOR_TOTAL_EVENTS"),
        (["--dry-run", "--total-events", "1.5"], {}, "--total-events / GENERATOR_TOTAL_EVENTS"),
        (["--dry-run", "--duration-seconds", "0"], {}, "--duration-seconds / GENERATOR_DURATION_SECONDS"),
        (["--dry-run", "--fraud-rate", "0.9"], {}, "--fraud-rate / GENERATOR_FRAUD_RATE"),
        (["--dry-run"], {"GENERATOR_FRAUD_RATE": "nan"}, "--fraud-rate / GENERATOR_FRAUD_RATE"),
        (["--dry-run", "--malformed-rate", "-0.1"], {}, "--malformed-rate / GENERATOR_MALFORMED_RATE"),
        (["--dry-run"], {"GENERATOR_CUSTOMERS": "abc"}, "--customers / GENERATOR_CUSTOMERS"),
        (["--dry-run", "--customers", "0"], {}, "--customers / GENERATOR_CUSTOMERS"),
        (["--dry-run", "--stores", "5"], {}, "--stores / GENERATOR_STORES"),
        (["--dry-run", "--seed", "-3"], {}, "--seed / GENERATOR_SEED"),
        (["--dry-run", "--topic", "bad topic!"], {}, "--topic / GENERATOR_TOPIC"),
        (["--dry-run", "--start-time", "yesterday"], {}, "--start-time / GENERATOR_START_TIME"),
        (["--dry-run", "--currency", "euro"], {}, "--currency / GENERATOR_CURRENCY"),
        ([], {"GENERATOR_DRY_RUN": "maybe"}, "--dry-run / GENERATOR_DRY_RUN"),
        (["--dry-run", "--log-interval-seconds", "0"], {}, "--log-interval-seconds / GENERATOR_LOG_INTERVAL_SECONDS"),
    ],
)
def test_invalid_values_name_the_flag_and_env_var(argv: list[str], env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(argv, env)
    assert str(error.value).startswith(names)


def test_cli_exits_2_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dry-run", "--fraud-rate", "2"], {}) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--fraud-rate / GENERATOR_FRAUD_RATE" in err and "between 0 and 0.5" in err


def test_unknown_flag_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-flag"], {})
    assert exit_info.value.code == 2
