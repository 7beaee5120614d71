"""The settings' vocabulary: the enums, the error type and the names a ``STREAMFLOW_*`` variable may have.

Kept apart from :mod:`streamflow.settings` (the settings object itself) so the object's module holds
only its fields and their checks; import these names from :mod:`streamflow.settings` as before.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "STREAMFLOW_"
#: The Airflow connection id of the warehouse (``AIRFLOW_CONN_STREAMFLOW_POSTGRES``): Cosmos' dbt profile.
WAREHOUSE_CONN_ID = "streamflow_postgres"

#: ``STREAMFLOW_*`` variables that are not settings, and who sets or reads each. They share the prefix
#: because they belong to the platform, and processes the platform starts inherit them (Airflow task
#: processes, dbt subprocesses, Flink jobs): the unknown-variable check must let them through.
#: A new one is added here, with its owner, or the check (and tests/unit/streamflow) fails.
PLATFORM_VARIABLES: dict[str, str] = {
    # Set by Settings.warehouse_env() (local) or the Airflow Helm values (Kubernetes) for dbt.
    # (STREAMFLOW_WAREHOUSE_DB is also the warehouse_db setting, with the same value.)
    **{f"{ENV_PREFIX}WAREHOUSE_{part}": "warehouse connection for dbt: set by Settings.warehouse_env() and "
       "k8s/helm/airflow-values.yaml, read by dbt/profiles.yml and the Cosmos profile"
       for part in ("HOST", "PORT", "USER", "PASSWORD")},
    f"{ENV_PREFIX}DBT_SCHEMA": "dbt/profiles.yml: fallback schema of the dbt target (default silver)",
    f"{ENV_PREFIX}DBT_THREADS": "dbt/profiles.yml: dbt threads (default 2)",
    f"{ENV_PREFIX}EVENT_SCHEMA": "set for the Flink jobs (FlinkDeployment env, streamflow/runtime/flink_local.py), "
    "read by flink_app/events.py",
    f"{ENV_PREFIX}PYTHON": "scripts/setup.sh: the CPython 3.11 the venvs are built with",
    f"{ENV_PREFIX}IMAGE_TAG": "k8s/versions.env: tag of the streamflow/* images (scripts/build_images.sh)",
    f"{ENV_PREFIX}IMAGES_IMPORT_K3S": "scripts/build_images.sh: also import the images into k3s",
    f"{ENV_PREFIX}K8S_VERSION": "scripts/build_k8s_binaries.sh: Kubernetes version of the test control plane",
    f"{ENV_PREFIX}ETCD_VERSION": "scripts/build_k8s_binaries.sh: etcd version of the test control plane",
    f"{ENV_PREFIX}COREDNS_VERSION": "scripts/build_k8s_binaries.sh: CoreDNS version of the test cluster",
    f"{ENV_PREFIX}DEBIAN_MIRROR": "scripts/k8s_images.sh: Debian mirror for the image base (mmdebstrap)",
    f"{ENV_PREFIX}DEBIAN_SECURITY_MIRROR": "scripts/k8s_images.sh: Debian security mirror for the image base",
    f"{ENV_PREFIX}OCI_RUNTIME": "scripts/k8s_images.sh: OCI runtime used to build the images",
    f"{ENV_PREFIX}IMAGE_EXTRA_CA_DIR": "scripts/k8s_images.sh: extra CA certificates copied into the images",
    f"{ENV_PREFIX}VENDOR_DIR": "scripts/k8s_operator_build.sh: folder with the vendored operator sources",
    f"{ENV_PREFIX}K8S_BIN_DIR": "tests/k8s_testenv.py: prebuilt etcd/kube-apiserver/kubectl",
    f"{ENV_PREFIX}K8S_CRD_DIR": "tests/k8s_testenv.py: another folder of CRD files",
    f"{ENV_PREFIX}K8S_API_PORT": "scripts/k8s_api.sh, tests/k8s_testenv.py: fixed test API server port",
    f"{ENV_PREFIX}TEST_K8S_CLUSTER": "tests/k8s_cluster: 1 runs the real single-node cluster tests (make test-k8s)",
    f"{ENV_PREFIX}TEST_K8S_STAGE": "scripts/run_tests.sh: 0 leaves the real-cluster stage out of `make test` (said so)",
    f"{ENV_PREFIX}K8S_CLUSTER_DIR": "scripts/k8s_cluster.sh: state dir of the test cluster",
    f"{ENV_PREFIX}K8S_OCI_RUNTIME": "scripts/k8s_cluster.sh, tests/k8s_cluster_env.py: runc (default) or crun",
    f"{ENV_PREFIX}K8S_IMAGES": "scripts/k8s_cluster.sh: which image archives `up` imports",
    f"{ENV_PREFIX}DBT_TEST_WAREHOUSE_DSN": "tests/integration/dbt: run the dbt tests against a throwaway server",
    f"{ENV_PREFIX}FAULT_EVENTS": "tests/integration/faults: events per fault-injection run",
    f"{ENV_PREFIX}FAULT_RATE": "tests/integration/faults: events/s of the fault-injection runs",
    f"{ENV_PREFIX}FAULT_CATCH_UP_S": "tests/integration/faults: catch-up timeout",
    f"{ENV_PREFIX}BENCH_WAREHOUSE_DSN": "bench/dbt_build.py: throwaway warehouse of the dbt benchmark",
    f"{ENV_PREFIX}BENCH_TEST_OUTPUT": "bench/reliability.py: reuse figures of an earlier test run",
    f"{ENV_PREFIX}BENCH_KAFKA": "bench/generator_throughput.py: broker of the generator benchmark",
    f"{ENV_PREFIX}BENCH_COLD_SETUP": "bench/stack_startup.py: also time a cold set-up",
}

#: Airflow's cron presets (airflow.sdk.definitions.timetables._cron.CRON_PRESETS) and ``@once``.
CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
SCHEDULE_PRESETS = (*CRON_PRESETS, "@once")


class Runtime(StrEnum):
    """Where jobs and the generator run; DAG files never change between the two."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


class DbtExecutionMode(StrEnum):
    """How Cosmos runs the per-model dbt tasks (ADR 0008; ``local`` is ADR 0007)."""

    LOCAL = "local"  # one `dbt build --select <model>` process per task
    WATCHER = "watcher"  # one `dbt build` per task group; per-model tasks watch its progress


class SettingsError(ValueError):
    """A configuration problem, phrased for the person who has to fix it."""
