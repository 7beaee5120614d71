"""The generator pod template drives the local process: same args and env, runtime-bound parts replaced."""

from __future__ import annotations

from pathlib import Path

import yaml

from streamflow.catalog import GENERATOR_TOPIC_ENV
from streamflow.generator_spec import POD_TEMPLATE, bounded_run_args, load_generator_spec, local_argv
from streamflow.settings import load_settings


def test_local_process_uses_the_pod_templates_command_args_and_env(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, postgres_password="x", generator_events=1234)
    spec = load_generator_spec().with_args(*bounded_run_args(settings))
    argv, env = local_argv(spec, settings)
    pod = yaml.safe_load(POD_TEMPLATE.read_text())
    container = pod["spec"]["containers"][0]
    assert argv[0] == str(settings.venv_python("generator"))
    assert argv[1:3] == container["command"][1:]
    assert argv[3:3 + len(container["args"])] == container["args"]
    assert argv[-7:] == ["--total-events", "1234", "--seed", "42", "--events-per-second", "0", "--backfill"]
    bound = {"GENERATOR_BOOTSTRAP_SERVERS", *GENERATOR_TOPIC_ENV}
    for item in container["env"]:
        if item["name"] not in bound:
            assert env[item["name"]] == item["value"]
    assert env["GENERATOR_BOOTSTRAP_SERVERS"] == settings.kafka_bootstrap
    for name, field in GENERATOR_TOPIC_ENV.items():  # runtime-bound: the settings' topic, not the written one
        assert env[name] == getattr(settings, field)


def test_a_change_to_the_template_shows_in_the_local_run(tmp_path: Path) -> None:
    pod = yaml.safe_load(POD_TEMPLATE.read_text())
    pod["spec"]["containers"][0]["env"].append({"name": "GENERATOR_FRAUD_RATE_OVERRIDE_TEST", "value": "0.5"})
    pod["spec"]["containers"][0]["args"].append("--extra-flag")
    changed = tmp_path / "pod.yaml"
    changed.write_text(yaml.safe_dump(pod))
    settings = load_settings(state_dir=tmp_path, postgres_password="x")
    argv, env = local_argv(load_generator_spec(changed), settings)
    assert "--extra-flag" in argv
    assert env["GENERATOR_FRAUD_RATE_OVERRIDE_TEST"] == "0.5"
