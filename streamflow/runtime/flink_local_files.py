"""The files of the local Flink cluster and of each job's submission: the cluster's config dir (the
merged cluster-level configuration over PyFlink's defaults) and lib dir (jar symlinks), each job's
client config dir, and the environments the processes start with."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from streamflow.flink_spec import FlinkJobSpec
from streamflow.runtime.flink_local_config import (
    ClusterLayout,
    FlinkJobError,
    client_configuration,
    cluster_configuration,
    cluster_env,
    flatten_yaml,
    flink_venv_python,
    layout,
    local_job_env,
    pyflink_home,
    render_config_yaml,
)
from streamflow.settings import Settings

LOG_CONFIGS = ("log4j-console.properties", "log4j-cli.properties", "log4j.properties", "logback-console.xml")


def _base_configuration(settings: Settings) -> dict[str, str]:
    import yaml  # only where files are prepared; the DAG import path stays light

    return flatten_yaml(yaml.safe_load((pyflink_home(settings) / "conf" / "config.yaml").read_text()) or {})


def _write_conf_dir(conf_dir: Path, configuration: dict[str, str], settings: Settings) -> None:
    home = pyflink_home(settings)
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "config.yaml").write_text(render_config_yaml(configuration, _base_configuration(settings)))
    for name in LOG_CONFIGS:
        source = home / "conf" / name
        if source.exists():
            (conf_dir / name).write_text(source.read_text())


def prepare_cluster_dir(spec: FlinkJobSpec, settings: Settings) -> ClusterLayout:
    """Write the cluster's conf and lib dirs (only while its processes are down: a running JVM keeps
    the files it started with) and create the spec's job dirs."""
    paths = layout(spec, settings)
    home = pyflink_home(settings)
    shutil.rmtree(paths.tmp_dir, ignore_errors=True)  # the previous processes' working dirs: nothing reads them
    for directory in (paths.tmp_dir, paths.lib_dir, paths.cluster_log_dir, paths.log_dir, paths.checkpoints_dir,
                      paths.savepoints_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _write_conf_dir(paths.cluster_conf_dir, cluster_configuration(spec, settings), settings)
    connector_dir = settings.jars_dir / "flink"
    # flink-python in lib/ (not only in the job jar): pemja must be loaded once per TaskManager, or a task
    # restarted in the same TaskManager fails, and so would a second job (see
    # classloader.parent-first-patterns.additional in the specs)
    functions_jar = settings.flink_functions_jar
    jars = (sorted((home / "lib").glob("*.jar")) + sorted((home / "opt").glob("flink-python-*.jar"))
            + sorted(connector_dir.glob("*.jar")) + [functions_jar])
    if not list(connector_dir.glob("flink-connector-kafka-*.jar")):
        raise FlinkJobError(
            f"no connector jars in {connector_dir}; run `make setup` (Maven resolves flink_app/pom.xml)"
        )
    if not functions_jar.is_file():
        raise FlinkJobError(
            f"the jobs' Java functions are missing ({functions_jar}); run `make setup` "
            "(scripts/build_flink_functions.sh compiles jvm/flink-functions)"
        )
    for old in paths.lib_dir.glob("*.jar"):
        old.unlink()
    for jar in jars:
        (paths.lib_dir / jar.name).symlink_to(jar)
    return paths


def prepare_client_dir(spec: FlinkJobSpec, settings: Settings,
                       overrides: dict[str, str] | None = None) -> ClusterLayout:
    """Write the job's client config dir: the cluster's address plus the job's own job-level options
    (checkpoint dir, state backend, restart strategy...), which ``flink run`` puts into the job;
    ``overrides`` (job-level keys) win over the spec's."""
    paths = layout(spec, settings)
    for directory in (paths.tmp_dir, paths.log_dir, paths.checkpoints_dir, paths.savepoints_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _write_conf_dir(paths.conf_dir, {**client_configuration(spec, settings), **(overrides or {})}, settings)
    return paths


def _flink_env(settings: Settings, paths: ClusterLayout) -> dict[str, str]:
    """The env every Flink process of the cluster starts with (JVMs and the Python they launch).

    Their temporary files go to the cluster's ``tmp_dir``: ``io.tmp.dirs`` covers Flink's own, but the
    JVM (RPC and planner jars, native libraries, web uploads) and Python (job archives) use the system
    temp dir, which would keep every run's files in /tmp after the processes end."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLINK_", "PYFLINK_", "VIRTUAL_ENV", "JVM_ARGS"))}
    venv_bin = flink_venv_python(settings).parent
    env.update({"PATH": f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}", "TZ": "UTC",
                "TMPDIR": str(paths.tmp_dir), "JVM_ARGS": f"-Djava.io.tmpdir={paths.tmp_dir}"})
    return env


def cluster_process_env(spec: FlinkJobSpec, settings: Settings, paths: ClusterLayout) -> dict[str, str]:
    """JobManager/TaskManager env: the cluster's dirs and every member spec's container env
    (:func:`~streamflow.runtime.flink_local_config.cluster_env`)."""
    env = _flink_env(settings, paths)
    env.update({"FLINK_CONF_DIR": str(paths.cluster_conf_dir), "FLINK_LIB_DIR": str(paths.lib_dir),
                "FLINK_LOG_DIR": str(paths.cluster_log_dir), "FLINK_PID_DIR": str(paths.cluster_root)})
    env.update(cluster_env(spec, settings))
    return env


def process_env(spec: FlinkJobSpec, settings: Settings, paths: ClusterLayout) -> dict[str, str]:
    """The job's ``flink run`` env: its client config dir and its own container env (the job's client
    reads endpoints and credentials from it while it builds the job graph)."""
    env = _flink_env(settings, paths)
    env.update({"FLINK_CONF_DIR": str(paths.conf_dir), "FLINK_LIB_DIR": str(paths.lib_dir),
                "FLINK_LOG_DIR": str(paths.log_dir), "FLINK_PID_DIR": str(paths.root)})
    env.update(local_job_env(spec, settings))
    return env
