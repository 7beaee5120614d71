"""`streamflow` command line: run the local stack and operate it.

Examples::

    streamflow up                    # whole local stack, waits until every service is healthy
    streamflow up --only postgres,kafka
    streamflow up --resume           # ... and a bootstrapped pipeline's Flink jobs (Airflow after their submission)
    streamflow status                # services, Flink jobs, consumer lag, URLs, the Airflow admin password
    streamflow logs kafka -n 50      # tail a service log (-f to follow); flink-<job> for a Flink job
    streamflow bootstrap             # trigger bootstrap_pipeline and follow it (live task table)
    streamflow bootstrap --if-needed # ... unless this stack already bootstrapped: then resume the jobs
    streamflow doctor                # check every part; each problem with its fix (exit 1 if any)
    streamflow psql -c 'select 1'    # psql on the warehouse (--db airflow for Airflow's metadata DB)
    streamflow kafka topics | lag | tail <topic> [-n 20] [-f]
    streamflow flink jobs | restart <job> | cancel <job>
    streamflow down                  # stop everything, no process left behind

This module only parses arguments and prints; the logic lives in :mod:`streamflow.ops`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamflow.settings import Runtime, Settings, SettingsError, load_settings
from streamflow.stack.process import ServiceError

if TYPE_CHECKING:
    from streamflow.airflow_client import AirflowClient


def _only(args: argparse.Namespace) -> list[str] | None:
    return [s for s in args.only.split(",") if s] if args.only else None


def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Start the stack. `--resume` (a whole local start) also resumes a bootstrapped pipeline's Flink
    jobs (ADR 0014): when the state folder holds retained checkpoints, the Flink session cluster starts at
    once in a thread (it needs neither PostgreSQL nor Kafka, and the resume waits for it), and Airflow
    starts once the jobs' `flink run` clients are done, filling the wait for their restore and stable
    window: on 2 cores the idle waits overlap the CPU work instead of queueing behind it."""
    from streamflow.ops.background import Background
    from streamflow.ops.stack import print_status
    from streamflow.stack import supervisor
    from streamflow.warehouse import apply_migrations

    only = _only(args)
    began = time.monotonic()
    resume_local = args.resume and only is None and settings.runtime is Runtime.LOCAL
    cluster: Background[str] | None = None
    resuming: Background[object] | None = None
    if resume_local:
        from streamflow.ops.resume import MetadataDbRuns, previous_bootstrap, resume
        from streamflow.runtime.flink_local import retained_checkpoints, start_shared_cluster

        if retained_checkpoints(settings):  # a pipeline ran here: its jobs will resume on the cluster
            cluster = Background("flink-cluster", lambda: start_shared_cluster(settings))

        supervisor.up(settings, ["postgres", "kafka"])
        apply_migrations(settings)
        previous = previous_bootstrap(settings, MetadataDbRuns(settings))
        if previous.done:
            import threading

            print(f"resuming the Flink jobs; Airflow starts once they are submitted ({previous.reason})", flush=True)
            submitted = threading.Event()
            resuming = Background("resume-flink-jobs", lambda: resume(settings, on_submitted=submitted.set))
            # Airflow's start fills the jobs' restore and stable window, not their clients' CPU (ADR 0014).
            while not submitted.wait(0.5) and not resuming.done:
                pass
        else:
            print(f"not resuming the Flink jobs: {previous.reason}", flush=True)
    supervisor.up(settings, only)
    if only is None or "postgres" in only:
        apply_migrations(settings)
    print(f"stack healthy in {time.monotonic() - began:.1f} s")
    if cluster is not None:
        try:
            url = cluster.result()
        except Exception as error:  # any cause: reported with the fix, not a traceback
            print(f"error: the Flink session cluster did not start: {error}\n"
                  "fix: read the logs it names; free the ports it names or `streamflow down`, then start again",
                  file=sys.stderr)
            return 1
        print(f"flink session cluster ready {time.monotonic() - began:.1f} s after the start: {url}", flush=True)
    if resuming is not None:
        from streamflow.ops.resume import ResumeError

        try:
            resuming.result()
        except Exception as error:  # reported with the fix, not a traceback
            print(f"error: {error}\n{ResumeError.HINT}", file=sys.stderr)
            return 1
        print(f"Flink jobs resumed and healthy {time.monotonic() - began:.1f} s after the start", flush=True)
    if not args.no_status:
        print_status(settings)
    return 0


def _cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.runtime import local_jobs
    from streamflow.stack import supervisor

    only = _only(args)
    if only is None:
        local_jobs.stop_all(settings)
    stopped = supervisor.down(settings, only)
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops.stack import print_status

    return 0 if print_status(settings) else 3


def _cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops.stack import show_log

    return show_log(settings, args.service, args.lines, args.follow)


def _cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.airflow_client import AirflowClient, follow_run

    client = AirflowClient.from_settings(settings)
    if args.if_needed and _resumed(settings, client):
        return 0
    run_id = client.trigger("bootstrap_pipeline")
    print(f"triggered bootstrap_pipeline run {run_id} ({settings.airflow_url}/dags/bootstrap_pipeline)", flush=True)
    if args.no_wait:
        return 0
    state = follow_run(client, "bootstrap_pipeline", run_id, timeout_s=args.timeout)
    return 0 if state == "success" else 1


def _resumed(settings: Settings, client: AirflowClient) -> bool:
    """`bootstrap --if-needed`: resume a pipeline this stack already bootstrapped (ADR 0014); False when
    it was not, after saying why (then bootstrap_pipeline is triggered)."""
    from streamflow.ops import resume

    began = time.monotonic()
    previous = resume.previous_bootstrap(settings, client)
    if not previous.done:
        print(f"bootstrapping: {previous.reason}", flush=True)
        return False
    print(f"already bootstrapped ({previous.reason}): resuming the Flink jobs from their checkpoints", flush=True)
    try:
        healthy = resume.resume(settings)
    except resume.ResumeError as error:
        print(f"error: {error}\n{resume.ResumeError.HINT}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"pipeline up in {time.monotonic() - began:.1f} s: {', '.join(sorted(healthy))} healthy "
          "(RUNNING, a checkpoint since the restore); `make bootstrap` runs bootstrap_pipeline again", flush=True)
    return True


def _cmd_prepare(settings: Settings, args: argparse.Namespace) -> int:
    """Set-up steps that need the Python environments: the dbt manifest the DAGs render from."""
    from streamflow.dbt_runner import parse_manifest

    began = time.monotonic()
    manifest = parse_manifest(settings)
    print(f"dbt manifest ready: {manifest} ({time.monotonic() - began:.1f} s)")
    return 0


def _cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops import doctor

    print(f"streamflow doctor: {time.strftime('%Y-%m-%d %H:%M:%S')}, state {settings.state_dir}", flush=True)
    findings = doctor.run(settings)
    print(doctor.report(findings))
    return doctor.exit_code(findings)


def _cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops import kafka
    from streamflow.ops.render import table

    if args.kafka_command == "topics":
        rows = [(t.name, t.partitions, t.offsets, t.role) for t in kafka.topics(settings)]
        print(table(("topic", "partitions", "offsets", "role"), rows))
        return 0
    if args.kafka_command == "lag":
        lags = kafka.job_lags(settings)
        print(table(("job", "group", "lag"), [(r.job, r.group, kafka.describe_lag(r)) for r in lags]))
        return 1 if any(r.error for r in lags) else 0
    return kafka.print_tail(settings, args.topic, args.lines, args.follow)


def _cmd_flink(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops import flink
    from streamflow.ops.render import table

    if args.flink_command == "jobs":
        rows = [flink.row(health) for _, health in flink.health_rows(settings)]
        print(table(("job", "state", "restarts", "last checkpoint", "running since", "healthy", "REST / resource"),
                    [(r.job, r.state, r.restarts, r.last_checkpoint, r.running_since, "yes" if r.healthy else "no",
                      r.source) for r in rows]))
        for r in rows:
            if not r.healthy:
                print(f"  {r.job}: {r.reason}")
        return 0 if all(r.healthy for r in rows) else 1
    action = flink.restart if args.flink_command == "restart" else flink.cancel
    try:
        print(action(settings, args.job))
    except flink.FlinkOpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_psql(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.ops import psql

    psql.exec_psql(settings, args.db, args.psql_args)
    return 0  # not reached: psql replaced this process


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the local stack and wait until healthy")
    p_up.add_argument("--resume", action="store_true",
                      help="if this stack's pipeline was bootstrapped, resume its Flink jobs from their checkpoints "
                      "before Airflow starts, which then overlaps their restore (warm `make up`, ADR 0014)")
    p_up.add_argument("--only", help="comma-separated services: postgres,kafka,airflow")
    p_up.add_argument("--no-status", action="store_true",
                      help="skip the status table at the end (`make up` prints it once, after the pipeline step)")
    p_up.set_defaults(func=_cmd_up)
    p_down = sub.add_parser("down", help="stop the local stack (and local Flink jobs)")
    p_down.add_argument("--only", help="comma-separated services")
    p_down.set_defaults(func=_cmd_down)
    sub.add_parser("status", help="services, Flink jobs, consumer lag, URLs and credentials").set_defaults(
        func=_cmd_status)
    p_logs = sub.add_parser("logs", help="show a service's log (flink-<job> for a Flink job)")
    p_logs.add_argument("service")
    p_logs.add_argument("-n", "--lines", type=int, default=40)
    p_logs.add_argument("-f", "--follow", action="store_true")
    p_logs.set_defaults(func=_cmd_logs)
    sub.add_parser("prepare", help="parse the dbt project into the manifest the DAGs render from").set_defaults(
        func=_cmd_prepare)
    p_boot = sub.add_parser("bootstrap", help="trigger bootstrap_pipeline and follow it")
    p_boot.add_argument("--no-wait", action="store_true")
    p_boot.add_argument("--if-needed", action="store_true",
                        help="only if this stack has no successful bootstrap_pipeline run with a populated gold "
                        "layer; otherwise resume the Flink jobs from their checkpoints (warm `make up`, ADR 0014)")
    p_boot.add_argument("--timeout", type=float, default=1800)
    p_boot.set_defaults(func=_cmd_bootstrap)
    sub.add_parser("doctor", help="check every part and print each problem with its fix").set_defaults(
        func=_cmd_doctor)

    p_psql = sub.add_parser("psql", help="psql on the warehouse; other arguments go to psql (-c SQL, -A ...)")
    p_psql.add_argument("--db", help="database (default: the warehouse; e.g. airflow)")
    p_psql.set_defaults(func=_cmd_psql, psql_args=[])

    p_kafka = sub.add_parser("kafka", help="topics, consumer lag, tail a topic")
    k_sub = p_kafka.add_subparsers(dest="kafka_command", required=True)
    k_sub.add_parser("topics", help="topics with partitions, offsets and their role")
    k_sub.add_parser("lag", help="consumer lag of every Flink job")
    k_tail = k_sub.add_parser("tail", help="the last messages of a topic (-f: then follow)")
    k_tail.add_argument("topic")
    k_tail.add_argument("-n", "--lines", type=int, default=10)
    k_tail.add_argument("-f", "--follow", action="store_true")
    p_kafka.set_defaults(func=_cmd_kafka)

    p_flink = sub.add_parser("flink", help="Flink jobs: health, restart, cancel")
    f_sub = p_flink.add_subparsers(dest="flink_command", required=True)
    f_sub.add_parser("jobs", help="every job's state, restarts, last checkpoint and health")
    for name, text in (("restart", "cancel (if running) and deploy again from the last checkpoint"),
                       ("cancel", "cancel the running job; checkpoints are kept")):
        f_sub.add_parser(name, help=text).add_argument("job", help="e.g. fraud_detector (or fraud-detector)")
    p_flink.set_defaults(func=_cmd_flink)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse; ``psql``'s own options pass through to psql untouched (``streamflow psql -A -c '...'``)."""
    parser = build_parser()
    if argv[:1] == ["psql"]:
        own, rest = [], list(argv[1:])
        while rest and (rest[0] in ("--db", "--help") or rest[0].startswith("--db=")):
            own.append(rest.pop(0))
            if own[-1] == "--db" and rest:
                own.append(rest.pop(0))
        args = parser.parse_args(["psql", *own])
        args.psql_args = rest
        return args
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except (ServiceError, RuntimeError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
