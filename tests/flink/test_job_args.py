"""Job arguments are parsed strictly: the FlinkDeployments' own ``job.args`` parse with each job's real
parser, and a typo, an abbreviation, a repeated option or a negative number fails naming the argument.

Runs in the flink venv (the jobs import pyflink); the specs are read with ruamel.yaml (apache-flink's
own dependency) from k8s/base/flink, the single source of the arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flink_app import config

REPO = Path(__file__).resolve().parents[2]
#: Flink 1.20 PythonDriver's own options (PythonDriverOptionsParserFactory), each with one value.
DRIVER_OPTIONS = {"-py", "-pym", "-pyfs", "-pyreq", "-pyarch", "-pyexec", "-pyclientexec", "-pypath"}


def _specs() -> dict[str, list[str]]:
    out = {}
    for path in sorted((REPO / "k8s" / "base" / "flink").glob("*.yaml")):
        doc = YAML(typ="safe").load(path.read_text())
        if doc and doc.get("kind") == "FlinkDeployment":
            out[doc["metadata"]["name"]] = [str(a) for a in doc["spec"]["job"]["args"]]
    return out


SPECS = _specs()


def _module_and_job_args(args: list[str]) -> tuple[str, list[str]]:
    """What PythonDriver does: consume its options up to the first other token, start `-m <module>`."""
    i, module = 0, ""
    while i < len(args) and args[i] in DRIVER_OPTIONS:
        if args[i] == "-pym":
            module = args[i + 1]
        i += 2
    return module, args[i:]


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


def job_parser(module: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The job's real parser, as its main() builds it (captured at the call of config.parse)."""

    def capture(parser: argparse.ArgumentParser, argv: object = None) -> argparse.Namespace:
        raise _Captured(parser)

    job = importlib.import_module(module)
    with monkeypatch.context() as patch:
        patch.setattr(config, "parse", capture)
        with pytest.raises(_Captured) as info:
            job.main([])
    return info.value.parser


def test_there_are_three_jobs() -> None:
    assert len(SPECS) == 3


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_args_parse_strictly_with_the_jobs_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module, args = _module_and_job_args(SPECS[name])
    assert module.startswith("flink_app.jobs.") and args and args[0].startswith("--")
    parsed = config.parse(job_parser(module, monkeypatch), args)
    assert parsed.group_id and parsed.sink_batch_size >= 0


@pytest.mark.parametrize("name", sorted(SPECS))
def test_unknown_argument_fails_naming_it(name: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    module, args = _module_and_job_args(SPECS[name])
    with pytest.raises(SystemExit) as info:
        config.parse(job_parser(module, monkeypatch), [*args, "--sink-batch-sise", "5"])
    assert info.value.code == 2
    assert "unrecognized arguments: --sink-batch-sise (did you mean --sink-batch-size?)" in capsys.readouterr().err


def test_a_driver_option_after_the_job_args_is_not_silently_ignored(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    module, args = _module_and_job_args(SPECS["transaction-processor"])
    with pytest.raises(SystemExit):
        config.parse(job_parser(module, monkeypatch), [*args, "-pyfs", "deps.zip"])
    assert "unrecognized arguments: -pyfs, deps.zip" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--sink-batch", "5"], "unrecognized arguments: --sink-batch (did you mean --sink-batch-size?)"),
    (["--group-id", "other"], "given more than once: --group-id"),
    (["--sink-batch-interval", "1 fortnight"], "argument --sink-batch-interval: '1 fortnight' is not a Flink"),
    (["--kafka-delivery", "maybe-once"], "argument --kafka-delivery: invalid choice"),
])
def test_strictness(extra: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    module, args = _module_and_job_args(SPECS["fraud-detector"])
    if extra[0] != "--group-id":
        args = _with(args, extra[0], extra[1])[:-1]   # drop the spec's own value, keep the others
    with pytest.raises(SystemExit):
        config.parse(job_parser(module, monkeypatch), [*args, *extra])
    assert message in capsys.readouterr().err


def _with(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option`` set to ``value`` (``--opt=value``: argparse reads ``--opt -inf`` as two options)."""
    if option in args:
        i = args.index(option)
        args = [*args[:i], *args[i + 2:]]
    return [*args, f"{option}={value}"]


@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data())
def test_negative_or_non_finite_numbers_fail_naming_the_argument(data: st.DataObject) -> None:
    """Property: for every job and every int/float argument, a negative, NaN or infinite value fails
    with exit status 2 and the argument's name; a non-negative one parses to that value."""
    name = data.draw(st.sampled_from(sorted(SPECS)))
    module, args = _module_and_job_args(SPECS[name])
    with pytest.MonkeyPatch.context() as monkeypatch:
        parser = job_parser(module, monkeypatch)
    numeric = {a.option_strings[0]: str(getattr(a.type, "__name__", "")) for a in parser._actions
               if a.option_strings and getattr(a.type, "__name__", "") in {"int", "float"}}
    assert "--sink-batch-size" in numeric
    option = data.draw(st.sampled_from(sorted(numeric)))
    negative = st.integers(max_value=-1).map(str)
    bad = data.draw(negative if numeric[option] == "int" else st.one_of(
        negative, st.sampled_from(["nan", "inf", "-inf", "-0.5", "-1e-9"])))
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(stderr):
        config.parse(parser, _with(args, option, bad))
    assert info.value.code == 2
    assert f"argument {option}: must be a finite number >= 0 (got {bad!r})" in stderr.getvalue()
    good = str(data.draw(st.integers(0, 10_000)))
    parsed = config.parse(parser, _with(args, option, good))
    assert float(getattr(parsed, option.lstrip("-").replace("-", "_"))) == float(good)


@pytest.mark.parametrize("value", ["1s", "500ms", "500 ms", "2min", "1h", "250", "3 seconds"])
def test_flink_durations_accepted(value: str) -> None:
    assert config.flink_duration(value) == value


@pytest.mark.parametrize("value", ["", "1x", "-1s", "1.5s", "s", "1 s s"])
def test_bad_durations_refused(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        config.flink_duration(value)
