"""The files of one local Flink cluster: its config dir (the spec's configuration over PyFlink's
defaults), its lib dir (jar symlinks) and the environment its processes start with."""

from __future__ import annotations

import os

from streamflow.flink_spec import FlinkJobSpec
from streamflow.runtime.flink_local_config import (
    ClusterLayout,
    FlinkJobError,
    flatten_yaml,
    flink_venv_python,
    layout,
    local_flink_configuration,
    local_job_env,
    pyflink_home,
    render_config_yaml,
)
from streamflow.settings import Settings


def prepare_cluster_dir(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    import yaml  # only where the cluster is prepared; the DAG import path stays light

    paths = layout(spec, settings)
    home = pyflink_home(settings)
    for directory in (paths.conf_dir, paths.lib_dir, paths.log_dir, paths.checkpoints_dir, paths.savepoints_dir):
        directory.mkdir(parents=True, exist_ok=True)
    base = flatten_yaml(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {})
    (paths.conf_dir / "config.yaml").write_text(render_config_yaml(local_flink_configuration(spec, settings), base))
    for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties", "logback-console.xml"):
        source = home / "conf" / name
        if source.exists():
            (paths.conf_dir / name).write_text(source.read_text())
    connector_dir = settings.jars_dir / "flink"
    # flink-python in lib/ (not only in the job jar): pemja must be loaded once per TaskManager, or a task
    # restarted in the same TaskManager fails (see classloader.parent-first-patterns.additional in the spec)
    jars = (sorted((home / "lib").glob("*.jar")) + sorted((home / "opt").glob("flink-python-*.jar"))
            + sorted(connector_dir.glob("*.jar")))
    if not list(connector_dir.glob("flink-connector-kafka-*.jar")):
        raise FlinkJobError(
            f"no connector jars in {connector_dir}; run `make setup` (Maven resolves flink_app/pom.xml)"
        )
    for old in paths.lib_dir.glob("*.jar"):
        old.unlink()
    for jar in jars:
        (paths.lib_dir / jar.name).symlink_to(jar)
    return paths


def process_env(spec: FlinkJobSpec, settings: Settings, paths: ClusterLayout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "PYFLINK_", "VIRTUAL_ENV"))}
    venv_bin = flink_venv_python(settings).parent
    env.update(
        {
            "FLINK_CONF_DIR": str(paths.conf_dir),
            "FLINK_LIB_DIR": str(paths.lib_dir),
            "FLINK_LOG_DIR": str(paths.log_dir),
            "FLINK_PID_DIR": str(paths.root),
            "PATH": f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}",
            "TZ": "UTC",
        }
    )
    env.update(local_job_env(spec, settings))
    return env
