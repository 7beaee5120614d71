"""The Dockerfiles, checked without a Docker engine: every COPY source exists (and is not excluded by
.dockerignore), base images are pinned, Python packages come only from the lock files, the final user
is the non-root uid the pods run as, and the paths the Kubernetes specs use inside the images are
exactly where the Dockerfiles put the repository's files."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from k8s_static import (
    HELM,
    IMAGES,
    REPO,
    Dockerfile,
    flink_deployments,
    load_yaml,
    lock_version,
    parse_dockerfile,
    pod_template,
    split_image,
    versions,
)

DOCKERFILES = {p.parent.name: parse_dockerfile(p) for p in sorted(IMAGES.glob("*/Dockerfile"))}
#: Images built from the repository (build context: the repo root).
REPO_IMAGES = ("airflow", "flink", "generator")
#: The Flink operator around the jar scripts/k8s_operator_build.sh builds; its build context is that
#: script's output (.streamflow/k8s-operator/<version>/), not the repository (issue 15).
OPERATOR_IMAGE = "flink-operator"
PINNED = versions()


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _ignored(rel: str) -> bool:
    parts = Path(rel).parts
    for pattern in _dockerignore():
        pattern = pattern.removeprefix("**/")
        for i in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) or fnmatch.fnmatch(parts[i], pattern):
                return True
    return False


def test_all_images_exist() -> None:
    assert set(DOCKERFILES) == {*REPO_IMAGES, OPERATOR_IMAGE}


def test_the_operator_image_copies_what_the_operator_build_writes() -> None:
    """Its COPY sources are the files scripts/k8s_operator_build.sh puts in its output folder, and its JRE
    stage is the Flink image's word for word (podman then reuses that layer: no second JRE install)."""
    df = DOCKERFILES[OPERATOR_IMAGE]
    build = (REPO / "scripts" / "k8s_operator_build.sh").read_text()
    sources = [src for stage in df.stages for srcs, _, _ in stage.copies() for src in srcs]
    version = re.search(r"^ARG OPERATOR_VERSION=(\S+)$", (IMAGES / OPERATOR_IMAGE / "Dockerfile").read_text(), re.M)
    written = {
        "flink-kubernetes-operator-${OPERATOR_VERSION}-shaded.jar":
            'JAR="flink-kubernetes-operator-${VERSION}-shaded.jar"',
        "docker-entrypoint.sh": '"$OUT/docker-entrypoint.sh"', "conf/": '"$OUT/conf/"', "plugins/": '"$OUT/plugins"',
        "LICENSE": '"$OUT/LICENSE"',
    }
    assert version and version.group(1) == PINNED["FLINK_OPERATOR_VERSION"]
    assert sources and not [s for s in sources if s not in written]
    assert not [s for s in sources if written[s] not in build], "the operator build no longer writes these"
    jre = [str(r.args) for r in DOCKERFILES["flink"].stages[0].of("RUN")]
    assert [str(r.args) for r in df.stages[0].of("RUN")] == jre


@pytest.mark.parametrize("name", REPO_IMAGES)
def test_every_copy_source_exists_in_the_build_context(name: str) -> None:
    df = DOCKERFILES[name]
    sources = [src for stage in df.stages for srcs, _, _ in stage.copies() for src in srcs]
    assert sources, "no COPY from the build context"
    missing = [s for s in sources if not (REPO / s).exists()]
    excluded = [s for s in sources if _ignored(s.rstrip("/"))]
    assert missing == [] and excluded == []
    for src in sources:   # a directory that is copied must have content
        if (REPO / src).is_dir():
            assert any((REPO / src).iterdir()), f"{src} is empty"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_images_are_pinned(name: str) -> None:
    df = DOCKERFILES[name]
    internal = {s.name for s in df.stages if s.name}
    bases = [s.base for s in df.stages if s.base not in internal]
    unpinned = [b for b in bases if split_image(b)[1] in (None, "latest") or "$" in b]
    assert bases and unpinned == []
    # One base for every image: the Debian rootfs scripts/k8s_images.sh builds with mmdebstrap and passes
    # as --build-arg BASE_IMAGE (no registry is reachable, so no image may come from one).
    assert set(bases) == {df.args["BASE_IMAGE"]} == {_K8S_IMAGES_BASE}, bases


_K8S_IMAGES_BASE = re.search(r'^BASE_IMAGE="([^"]+)"', (REPO / "scripts" / "k8s_images.sh").read_text(),
                             flags=re.M).group(1)  # type: ignore[union-attr]


def test_airflow_image_installs_the_locked_airflow_release() -> None:
    final = DOCKERFILES["airflow"].final
    airflow = lock_version("airflow", "apache-airflow")
    venv = final.env()["PATH"].split(":")[0].removesuffix("/bin")
    assert any(f"python -m venv {venv}" in r.args and "locks/airflow.txt" in r.args for r in final.of("RUN"))
    values = load_yaml(HELM / "airflow-values.yaml")
    assert values["airflowVersion"] == airflow


def test_flink_distribution_is_the_locked_pyflink_release() -> None:
    """/opt/flink is the Flink runtime shipped inside the locked PyFlink (moved out of the venv's
    pyflink package and linked back), so Flink and PyFlink can never be two different releases."""
    venv = DOCKERFILES["flink"].stage("venv")
    moves = " ".join(r.args for r in venv.of("RUN") if "/opt/flink" in r.args)
    assert "import os, pyflink" in moves and 'mv "$pyflink/$d" "/opt/flink/$d"' in moves
    assert 'ln -s "/opt/flink/$d" "$pyflink/$d"' in moves
    assert lock_version("flink", "apache-flink").startswith("1.20.")


_INSTALL = re.compile(r"\b(pip|uv pip|npm|poetry|conda|apt-get)\s+(install|sync|ci|add)\b(.*?)(?:&&|$)")


@pytest.mark.parametrize("name", REPO_IMAGES)
def test_python_packages_come_only_from_the_lock_files(name: str) -> None:
    df = DOCKERFILES[name]
    pip_installs = 0
    for stage in df.stages:
        copied_locks = {dest: srcs[0] for srcs, dest, _ in stage.copies() if srcs[0].startswith("locks/")}
        for run in stage.of("RUN"):
            for tool, _verb, rest in _INSTALL.findall(run.args):
                words = shlex.split(rest)
                if tool in {"pip", "uv pip"}:
                    pip_installs += 1
                    assert "--no-deps" in words, f"{name}: pip must install exactly the lock: {run.args}"
                    reqs = [words[i + 1] for i, w in enumerate(words) if w == "-r"]
                    packages = [w for w in words if not w.startswith("-") and w not in reqs]
                    assert reqs and packages == [], f"{name}: install from a lock only: {run.args}"
                    for req in reqs:
                        assert copied_locks.get(req, "").startswith("locks/"), f"{req} is not a COPY of locks/*.txt"
                        assert (REPO / copied_locks[req]).exists()
                elif tool == "npm":
                    assert _verb == "ci", "npm must install from package-lock.json (npm ci)"
                elif tool == "apt-get":
                    assert "--no-install-recommends" in words
        # every pip check runs where pip installed (resolver-free installs need the consistency check)
        if any("pip install" in r.args for r in stage.of("RUN")):
            assert any("pip check" in r.args for r in stage.of("RUN")), f"{name}/{stage.name}: no pip check"
    assert pip_installs >= 1


def test_each_image_installs_its_own_lock() -> None:
    def locks_of(df: Dockerfile) -> set[str]:
        return {srcs[0] for st in df.stages for srcs, _, _ in st.copies() if srcs[0].startswith("locks/")}
    assert locks_of(DOCKERFILES["airflow"]) == {"locks/airflow.txt", "locks/dbt.txt"}
    assert locks_of(DOCKERFILES["flink"]) == {"locks/flink.txt"}
    assert locks_of(DOCKERFILES["generator"]) == {"locks/generator.txt"}


def _uid(user: str | None) -> int:
    assert user, "no USER in the final stage"
    first = user.split(":")[0]
    assert first.isdigit(), f"USER {user}: use a numeric uid so runAsNonRoot can be verified"
    return int(first)


def test_final_users_are_the_non_root_uids_the_pods_run_as() -> None:
    uids = {name: _uid(df.final.user()) for name, df in DOCKERFILES.items()}
    assert 0 not in uids.values()
    assert uids["generator"] == pod_template()["spec"]["securityContext"]["runAsUser"]
    assert uids["airflow"] == load_yaml(HELM / "airflow-values.yaml")["securityContexts"]["pod"]["runAsUser"]
    assert {d["spec"]["podTemplate"]["spec"]["securityContext"]["runAsUser"] for d in flink_deployments()} == {
        uids["flink"]}


# --- Flink image <-> FlinkDeployments -------------------------------------------------------------
def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _container_env(deployment: dict[str, object]) -> dict[str, str]:
    spec = deployment["spec"]
    assert isinstance(spec, dict)
    container = spec["podTemplate"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.mark.parametrize("deployment", flink_deployments(), ids=lambda d: d["metadata"]["name"])
def test_flink_image_holds_what_the_flink_deployment_runs(deployment: dict[str, object]) -> None:
    df = DOCKERFILES["flink"]
    final = df.final
    spec = deployment["spec"]
    assert isinstance(spec, dict)
    assert spec["image"] == f"streamflow/flink:{PINNED['STREAMFLOW_IMAGE_TAG']}"
    args: list[str] = spec["job"]["args"]
    env = _container_env(deployment)

    # -pym flink_app.jobs.<job>: the module file, found through PYTHONPATH, comes from the repo's job code.
    module = _arg(args, "-pym")
    pythonpath = env["PYTHONPATH"]
    module_path = f"{pythonpath}/{module.replace('.', '/')}.py"
    repo_file = final.context_path_for(module_path)
    assert repo_file is not None, f"no COPY puts anything at {module_path}"
    assert repo_file.is_file() and repo_file == REPO / (module.replace(".", "/") + ".py")
    assert final.context_path_for(f"{pythonpath}/flink_app/__init__.py") == REPO / "flink_app" / "__init__.py"

    # The interpreter: the venv built from locks/flink.txt, copied into the final stage.
    python = _arg(args, "-pyclientexec")
    flink_conf = spec["flinkConfiguration"]
    assert python == flink_conf["python.executable"] == flink_conf["python.client.executable"]
    venv = python.removesuffix("/bin/python")
    venv_stage = df.stage("venv")
    assert any(f"python -m venv {venv}" in r.args for r in venv_stage.of("RUN"))
    assert any(srcs == [venv] and dest == venv and flags.get("from") == "venv"
               for srcs, dest, flags in final.copies(from_stage=True))

    # The model artifacts and the event schema the job reads.
    model_dir = final.context_path_for(_arg(args, "--model-dir")) if "--model-dir" in args else None
    if "--model-dir" in args:
        assert model_dir is not None and any(model_dir.glob("*.joblib")), "model artifact not in the image"
    schema = final.context_path_for(env["STREAMFLOW_EVENT_SCHEMA"])
    assert schema is not None and schema.is_file()

    # jarURI: the flink-python jar of the Flink distribution that comes with the locked PyFlink.
    jar = spec["job"]["jarURI"]
    flink_version = lock_version("flink", "apache-flink")
    assert jar == f"local:///opt/flink/opt/flink-python-{flink_version}.jar"
    assert spec["flinkVersion"] == "v" + "_".join(flink_version.split(".")[:2])
    assert any(srcs == ["/opt/flink"] and flags.get("from") == "venv" for srcs, _, flags in final.copies(True))


def test_flink_image_carries_the_connector_jars_from_the_pom() -> None:
    df = DOCKERFILES["flink"]
    connectors = df.stage("connectors")
    assert [srcs for srcs, _, _ in connectors.copies()] == [["flink_app/pom.xml"]]
    assert any("dependency:copy-dependencies" in r.args for r in connectors.of("RUN"))
    assert any(flags.get("from") == "connectors" and dest == "/opt/flink/lib/"
               for _, dest, flags in df.final.copies(from_stage=True))


def test_flink_image_carries_the_jobs_java_functions() -> None:
    """The three jobs load io.streamflow.flink from lib/ (flink_app/jvm_functions.py): the image compiles
    jvm/flink-functions with the same script as `make setup` and puts the jar there."""
    df = DOCKERFILES["flink"]
    functions = df.stage("functions")
    assert ["jvm/flink-functions/"] in [srcs for srcs, _, _ in functions.copies()]
    assert any("build_flink_functions.sh /opt/flink /build/streamflow-flink-functions.jar" in r.args
               for r in functions.of("RUN"))
    assert any(flags.get("from") == "functions" and srcs == ["/build/streamflow-flink-functions.jar"]
               and dest == "/opt/flink/lib/" for srcs, dest, flags in df.final.copies(from_stage=True))


# --- Airflow image <-> the code that reads files at run time ---------------------------------------
def test_airflow_image_holds_what_the_kubernetes_runtime_reads() -> None:
    from streamflow import catalog, generator_spec

    final = DOCKERFILES["airflow"].final
    env = final.env()
    root = env["PYTHONPATH"]   # the repo root inside the image: streamflow/ is importable from it

    def in_image(repo_path: Path) -> str:
        return f"{root}/{repo_path.resolve().relative_to(REPO)}"

    expected = {
        **{f"FlinkDeployment {job.name}": job.spec_path for job in catalog.flink_jobs()},
        "generator pod template": generator_spec.POD_TEMPLATE,
        "dbt project": REPO / "dbt" / "dbt_project.yml",
        "dbt profile": REPO / "dbt" / "profiles.yml",
        "streamflow package": REPO / "streamflow" / "settings.py",
        "bootstrap DAG": REPO / "dags" / "bootstrap_pipeline.py",
        "lineage plugin": REPO / "plugins" / "streamflow_lineage_plugin.py",
    }
    wrong = {what: path for what, path in expected.items()
             if final.context_path_for(in_image(path)) != path.resolve()}
    assert wrong == {}
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{root}/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{root}/plugins"


def test_airflow_image_and_chart_agree_on_dbt_and_state_paths() -> None:
    df = DOCKERFILES["airflow"]
    env = df.final.env()
    values_env = {e["name"]: str(e["value"]) for e in load_yaml(HELM / "airflow-values.yaml")["env"]}
    for key in ("STREAMFLOW_DBT_EXECUTABLE_PATH", "STREAMFLOW_DBT_ARTIFACTS_DIR", "STREAMFLOW_RUNTIME"):
        assert values_env[key] == env[key], key
    dbt = env["STREAMFLOW_DBT_EXECUTABLE_PATH"]
    venv = dbt.removesuffix("/bin/dbt")
    assert any(f"python -m venv {venv}" in r.args and "locks/dbt.txt" in r.args for r in df.final.of("RUN"))
    # The manifest Cosmos renders from is parsed at build time into $STREAMFLOW_DBT_ARTIFACTS_DIR/target.
    parse = " ".join(r.args for r in df.final.of("RUN") if "dbt parse" in r.args)
    assert f"{dbt} parse" in parse and f"--target-path {env['STREAMFLOW_DBT_ARTIFACTS_DIR']}/target" in parse
    # The lineage portal's browser libraries: $STREAMFLOW_STATE_DIR/portal-assets/node_modules.
    assets = f"{env['STREAMFLOW_STATE_DIR']}/portal-assets/node_modules/"
    assert any(dest == assets and flags.get("from") == "portal-assets"
               for _, dest, flags in df.final.copies(from_stage=True))
    # The dbt docs volume is mounted where the DAG publishes docs.
    mounts = load_yaml(HELM / "airflow-values.yaml")["apiServer"]["extraVolumeMounts"]
    assert mounts[0]["mountPath"] == f"{env['STREAMFLOW_DBT_ARTIFACTS_DIR']}/docs"


def test_generator_image_runs_the_pod_templates_command() -> None:
    final = DOCKERFILES["generator"].final
    container = pod_template()["spec"]["containers"][0]
    assert container["image"] == f"streamflow/generator:{PINNED['STREAMFLOW_IMAGE_TAG']}"
    assert container["command"][:3] == ["python", "-m", "generator"]
    env = final.env()
    assert env["PATH"].startswith("/opt/venv/bin:")   # `python` is the venv built from locks/generator.txt
    main = final.context_path_for(f"{env['PYTHONPATH']}/generator/__main__.py")
    assert main == REPO / "generator" / "__main__.py" and main.is_file()


# --- make images / k8s-deploy without the tools --------------------------------------------------------
def _run_without(tools_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run a script with a PATH that has only bash's basics (no docker, kubectl, helm)."""
    tools_path.mkdir(exist_ok=True)
    for tool in ("dirname", "cat", "mktemp", "rm"):
        target = Path("/usr/bin") / tool if (Path("/usr/bin") / tool).exists() else Path("/bin") / tool
        (tools_path / tool).symlink_to(target)
    return subprocess.run(["/bin/bash", str(REPO / "scripts" / script)], env={"PATH": str(tools_path)},
                          capture_output=True, text=True, check=False, timeout=60)


def test_make_images_without_docker_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    proc = _run_without(tmp_path / "bin", "build_images.sh")
    assert proc.returncode == 2
    assert "no 'docker' command" in proc.stderr
    assert "docker build -f images/flink/Dockerfile -t streamflow/flink:" in proc.stderr


def test_make_k8s_deploy_without_kubectl_explains_what_is_missing(tmp_path: Path) -> None:
    proc = _run_without(tmp_path / "bin", "k8s_deploy.sh")
    assert proc.returncode == 1
    assert "kubectl not found" in proc.stderr


def test_makefile_targets_call_the_scripts() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target, script in (("images", "build_images.sh"), ("k8s-render", "k8s_render.sh"),
                           ("k8s-deploy", "k8s_deploy.sh")):
        block = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
        assert block and f"scripts/{script}" in block.group(1), target
