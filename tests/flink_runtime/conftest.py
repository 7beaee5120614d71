"""Tests that run real PyFlink jobs on Flink's in-process mini cluster (flink venv, no services).

Run: .streamflow/venvs/flink/bin/python -m pytest tests/flink_runtime -q -p no:cacheprovider \
--confcutdir=tests/flink_runtime
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# pemja (thread mode) finds its site-packages through the `python` on PATH of the JVM that PyFlink's
# gateway starts from this process: put the flink venv first, as the local runtime does for its clusters.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# ... and the Python functions of a test (pickled by module name) must import there: the repo root
# (flink_app) and this folder (the test modules, imported by pytest under their bare names).
HERE = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1]), str(HERE), os.environ.get("PYTHONPATH", "")])


@pytest.fixture(scope="session")
def functions_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jobs' Java functions (jvm/flink-functions), built as `make setup` builds them; a mini cluster
    has no lib/ of ours, so the tests hand it to the job (``environments(jars=...)``)."""
    import pyflink

    from flink_app.jvm_functions import JAR_NAME

    jar = tmp_path_factory.mktemp("jvm") / JAR_NAME
    subprocess.run(["bash", str(HERE.parents[1] / "scripts" / "build_flink_functions.sh"),
                    str(Path(pyflink.__file__).parent), str(jar)], check=True, capture_output=True, text=True)
    return jar
