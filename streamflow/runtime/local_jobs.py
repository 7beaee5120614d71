"""Bridge from the CLI to local Flink jobs (owned by streamflow.runtime.flink_local when present)."""

from __future__ import annotations

from streamflow.settings import Settings


def stop_all(settings: Settings) -> None:
    try:
        from streamflow.runtime import flink_local
    except ImportError:
        return
    flink_local.stop_all(settings)


def status_lines(settings: Settings) -> list[str]:
    try:
        from streamflow.runtime import flink_local
    except ImportError:
        return []
    lines_fn = getattr(flink_local, "status_lines", None)
    return list(lines_fn(settings)) if lines_fn else []
