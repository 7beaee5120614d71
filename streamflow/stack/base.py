"""What every supervised service looks like: start, readiness, stop, status."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from streamflow.settings import Settings
from streamflow.stack import process
from streamflow.stack.process import PidFile


@dataclass
class ServiceStatus:
    name: str
    running: bool
    ready: bool
    pid: int | None
    detail: str = ""
    log_file: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Service:
    """A long-running local process owned by the supervisor (pid + log under the state dir)."""

    name: str = "service"
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- paths ----------------------------------------------------------------------------------
    @property
    def pid_file(self) -> PidFile:
        return PidFile(self.settings.run_dir / f"{self.name}.pid")

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    # --- to implement ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """One-off or idempotent set-up before the first start (init data dirs, migrations)."""

    def start(self) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def after_ready(self) -> None:
        """Idempotent steps once the service answers (create databases, users...)."""

    def describe(self) -> str:
        return ""

    # --- shared behaviour -----------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.pid_file.alive_pid() is not None

    def wait_ready(self) -> None:
        process.wait_until(
            self.name,
            self.ready,
            timeout_s=self.settings.service_start_timeout_s,
            log_file=self.log_file,
            pid_file=self.pid_file,
        )

    def stop(self) -> bool:
        pid = self.pid_file.alive_pid()
        if pid is not None and self.stop_signal is not signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, self.stop_signal)
        return process.stop(self.name, self.pid_file)

    def status(self) -> ServiceStatus:
        pid = self.pid_file.alive_pid()
        ready = False
        if pid is not None:
            try:
                ready = self.ready()
            except Exception:
                ready = False
        return ServiceStatus(
            name=self.name,
            running=pid is not None,
            ready=ready,
            pid=pid,
            detail=self.describe(),
            log_file=str(self.log_file),
        )
