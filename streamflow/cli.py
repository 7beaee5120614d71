"""`streamflow` command line: up | down | status | logs <svc> | bootstrap.

Examples::

    streamflow up                    # whole local stack, waits until every service is healthy
    streamflow up --only postgres,kafka
    streamflow status                # table of services, URLs and the Airflow admin password
    streamflow logs kafka -n 50      # tail a service log (-f to follow)
    streamflow bootstrap             # trigger bootstrap_pipeline and follow it to the end
    streamflow down                  # stop everything, no process left behind
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from streamflow.logs import get_log
from streamflow.settings import Settings, SettingsError, load_settings
from streamflow.stack import supervisor
from streamflow.stack.airflow import admin_password
from streamflow.stack.process import ServiceError

log = get_log("streamflow.cli")


def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    only = [s for s in args.only.split(",") if s] if args.only else None
    began = time.monotonic()
    supervisor.up(settings, only)
    if only is None or "postgres" in only:
        from streamflow.warehouse import apply_migrations

        apply_migrations(settings)
    print(f"stack healthy in {time.monotonic() - began:.1f} s")
    _print_status(settings)
    return 0


def _cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    only = [s for s in args.only.split(",") if s] if args.only else None
    from streamflow.runtime import local_jobs

    if only is None:
        local_jobs.stop_all(settings)
    stopped = supervisor.down(settings, only)
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def _print_status(settings: Settings) -> None:
    rows = supervisor.status(settings)
    width = max(len(r.name) for r in rows)
    for row in rows:
        state = "healthy" if row.ready else ("starting/unhealthy" if row.running else "stopped")
        pid = str(row.pid) if row.pid else "-"
        print(f"  {row.name:<{width}}  {state:<18} pid={pid:<8} {row.detail}")
    from streamflow.runtime import local_jobs

    for line in local_jobs.status_lines(settings):
        print(f"  {line}")
    password = admin_password(settings)
    print(f"  Airflow UI: {settings.airflow_url}  user: {settings.airflow_admin_user}  password: "
          f"{password or '(generated at first Airflow start)'}")
    print(f"  Lineage:    {settings.airflow_url}/plugin/streamflow-lineage")
    print(f"  Logs:       {settings.logs_dir}")


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    _print_status(settings)
    rows = supervisor.status(settings)
    return 0 if all(r.ready for r in rows) else 3


def _cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.logs_dir / f"{args.service}.log"
    if not path.exists():
        known = sorted(p.stem for p in settings.logs_dir.glob("*.log"))
        print(f"no log for {args.service!r} at {path}; known: {', '.join(known) or 'none yet'}", file=sys.stderr)
        return 2
    lines = path.read_text(errors="replace").splitlines()[-args.lines :]
    print("\n".join(lines))
    if args.follow:
        with open(path, errors="replace") as handle:
            handle.seek(0, 2)
            try:
                while True:
                    line = handle.readline()
                    if line:
                        print(line, end="")
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return 0
    return 0


def _cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from streamflow.airflow_client import AirflowClient, follow_run

    client = AirflowClient.from_settings(settings)
    run_id = client.trigger("bootstrap_pipeline")
    print(f"triggered bootstrap_pipeline run {run_id}")
    if args.no_wait:
        return 0
    state = follow_run(client, "bootstrap_pipeline", run_id, timeout_s=args.timeout)
    return 0 if state == "success" else 1


def _cmd_prepare(settings: Settings, args: argparse.Namespace) -> int:
    """Set-up steps that need the Python environments: the dbt manifest the DAGs render from."""
    from streamflow.dbt_runner import parse_manifest

    began = time.monotonic()
    manifest = parse_manifest(settings)
    print(f"dbt manifest ready: {manifest} ({time.monotonic() - began:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the local stack and wait until healthy")
    p_up.add_argument("--only", help="comma-separated services: postgres,kafka,airflow")
    p_up.set_defaults(func=_cmd_up)
    p_down = sub.add_parser("down", help="stop the local stack (and local Flink jobs)")
    p_down.add_argument("--only", help="comma-separated services")
    p_down.set_defaults(func=_cmd_down)
    sub.add_parser("status", help="show services, URLs and credentials").set_defaults(func=_cmd_status)
    p_logs = sub.add_parser("logs", help="show a service's log")
    p_logs.add_argument("service")
    p_logs.add_argument("-n", "--lines", type=int, default=40)
    p_logs.add_argument("-f", "--follow", action="store_true")
    p_logs.set_defaults(func=_cmd_logs)
    sub.add_parser("prepare", help="parse the dbt project into the manifest the DAGs render from").set_defaults(
        func=_cmd_prepare)
    p_boot = sub.add_parser("bootstrap", help="trigger bootstrap_pipeline and follow it")
    p_boot.add_argument("--no-wait", action="store_true")
    p_boot.add_argument("--timeout", type=float, default=1800)
    p_boot.set_defaults(func=_cmd_bootstrap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.func(settings, args))
    except (ServiceError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
