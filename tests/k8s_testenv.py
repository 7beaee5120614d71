"""A real Kubernetes control plane (etcd + kube-apiserver) on 127.0.0.1 for tests, envtest-style.

Schema validation proves a manifest is well-formed; only an API server proves that the platform talks
to Kubernetes correctly (CRD validation, server-side apply, RBAC, the ``/status`` subresource, the
ServiceAccount admission plugin, TokenRequest). There is no kubelet, scheduler or controller-manager:
objects are stored and validated, nothing runs. That is exactly the contract between Airflow and the
Flink/Strimzi/CNPG operators, which this harness plays by writing statuses itself.

The binaries are built from the Go module proxy by ``scripts/build_k8s_binaries.sh`` (cached under
``.streamflow/k8s-bin/<version>/``), the CRDs come from ``scripts/setup_k8s_tools.sh`` (published
artifacts at the versions in k8s/versions.env, cached under ``.streamflow/k8s-crds/``), and this
module generates a throwaway CA, serving and client certificates and a service-account signing key
for each control plane, so nothing secret is ever committed.
See docs/adr/0005-kube-apiserver-in-tests.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_k8s_binaries.sh"
SETUP_K8S_TOOLS = REPO_ROOT / "scripts" / "setup_k8s_tools.sh"
VERSIONS_ENV = REPO_ROOT / "k8s" / "versions.env"
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # first address of SERVICE_CIDR: the `kubernetes` Service gets it
ADMIN_USER = "streamflow-admin"
# The CRDs of the custom resources the platform creates; a test adds any other kind the overlay uses.
PLATFORM_CRDS = frozenset({
    "flinkdeployments.flink.apache.org",
    "kafkas.kafka.strimzi.io", "kafkanodepools.kafka.strimzi.io", "kafkatopics.kafka.strimzi.io",
    "clusters.postgresql.cnpg.io",
})


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached; the message says what to look at."""


# --- binaries and CRDs ---------------------------------------------------------------------------


def _run_build_script(timeout_s: float = 3600) -> Path:
    """Run the (idempotent, cached) build script and return the directory it prints on stdout."""
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(f"{BUILD_SCRIPT} is missing")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    out = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not out:
        tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
        raise ControlPlaneError(f"bash {BUILD_SCRIPT.relative_to(REPO_ROOT)} failed "
                                f"(exit {proc.returncode}):\n{tail}")
    return Path(out[-1])


def ensure_binaries() -> Path:
    """Directory holding etcd, kube-apiserver and kubectl (built on first use; seconds when cached).

    ``STREAMFLOW_K8S_BIN_DIR`` points at prebuilt binaries instead (e.g. controller-runtime's
    ``KUBEBUILDER_ASSETS`` folder on a developer machine), which skips the build entirely.
    """
    override = os.environ.get("STREAMFLOW_K8S_BIN_DIR")
    bin_dir = Path(override) if override else _run_build_script()
    missing = [b for b in ("etcd", "kube-apiserver", "kubectl") if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir


def _pinned_versions() -> dict[str, str]:
    """KEY=VALUE pairs of k8s/versions.env (the one list of operator versions)."""
    pairs: dict[str, str] = {}
    for line in VERSIONS_ENV.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            pairs[key.strip()] = value.strip().strip("\"'")
    return pairs


def ensure_crds() -> list[Path]:
    """The Flink operator, Strimzi, CloudNativePG and Argo CD CRD files at the versions pinned in
    k8s/versions.env: all of each operator's CRDs, since the overlay uses more kinds than the
    headline ones (e.g. CNPG ``Database``).

    They come from ``scripts/setup_k8s_tools.sh`` (published artifacts, cached under
    ``.streamflow/k8s-crds/``), the same files the static manifest tests validate against, so the
    API server and the schema tests can never disagree about a CRD version.
    ``STREAMFLOW_K8S_CRD_DIR`` points at another folder of CRD files instead.
    """
    override = os.environ.get("STREAMFLOW_K8S_CRD_DIR")
    if override:
        dirs = [Path(override)]
    else:
        if not SETUP_K8S_TOOLS.is_file():
            raise ControlPlaneError(f"{SETUP_K8S_TOOLS} is missing: it fetches the operators' CRDs")
        proc = subprocess.run(["bash", str(SETUP_K8S_TOOLS)], capture_output=True, text=True, timeout=1800,
                              check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
            raise ControlPlaneError(f"scripts/setup_k8s_tools.sh failed (exit {proc.returncode}):\n{tail}")
        versions = _pinned_versions()
        root = REPO_ROOT / ".streamflow" / "k8s-crds"
        dirs = [root / f"cnpg-{versions['CNPG_VERSION']}",
                root / f"flink-operator-{versions['FLINK_OPERATOR_VERSION']}",
                root / f"strimzi-{versions['STRIMZI_VERSION']}",
                root / f"argocd-{versions['ARGOCD_VERSION']}"]
    files = sorted(p for d in dirs for p in (*d.glob("*.yaml"), *d.glob("*.yml")) if p.is_file())
    if not files:
        raise ControlPlaneError(f"no CRD files in {', '.join(map(str, dirs))}")
    return files


def crd_documents(files: list[Path]) -> dict[str, dict[str, Any]]:
    """CustomResourceDefinition objects in ``files`` by name (``kafkas.kafka.strimzi.io``...)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser: these files are large
    found: dict[str, dict[str, Any]] = {}
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                found[str(doc["metadata"]["name"])] = doc
    return found


# --- PKI -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """File paths of a throwaway CA and the certificates the control plane and its admin use."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path  # private: signs service-account tokens (TokenRequest)
    sa_pub: Path  # public: verifies them


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def generate_pki(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
    """Generate a CA, the API server's serving certificate, an admin client certificate
    (group ``system:masters``, which RBAC always allows) and a service-account key pair.

    EC P-256 keys make this take milliseconds; the SA key is RSA because that is what every
    Kubernetes client and verifier supports without flags.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    valid_from, valid_to = now - dt.timedelta(minutes=5), now + dt.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamflow-test-ca")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid_from).not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(subject: x509.Name, usage: x509.ObjectIdentifier,
             sans: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_to)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    san: list[x509.GeneralName] = []
    for host in (*hosts, SERVICE_IP, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"):
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            san.append(x509.DNSName(host))
    serving, serving_key = leaf(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
                                ExtendedKeyUsageOID.SERVER_AUTH, san)
    admin, admin_key = leaf(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
                                       x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]),
                            ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    return Pki(
        ca_cert=_write(directory / "ca.crt", ca_cert.public_bytes(pem)),
        ca_key=_write(directory / "ca.key", _pem_key(ca_key), private=True),
        serving_cert=_write(directory / "apiserver.crt", serving.public_bytes(pem)),
        serving_key=_write(directory / "apiserver.key", _pem_key(serving_key), private=True),
        admin_cert=_write(directory / "admin.crt", admin.public_bytes(pem)),
        admin_key=_write(directory / "admin.key", _pem_key(admin_key), private=True),
        sa_key=_write(directory / "sa.key", _pem_key(sa_key), private=True),
        sa_pub=_write(directory / "sa.pub", sa_key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo)),
    )


def write_kubeconfig(path: Path, server: str, ca_cert: Path, *, user: str,
                     client_cert: Path | None = None, client_key: Path | None = None,
                     token: str | None = None, namespace: str = "default") -> Path:
    """A kubeconfig for ``server`` authenticating with a client certificate or a bearer token.

    Absolute file references (not embedded data) keep it readable and let kubectl, the Python
    client and Airflow's KubernetesHook all load the same file.
    """
    credentials: dict[str, str] = {}
    if client_cert and client_key:
        credentials = {"client-certificate": str(client_cert), "client-key": str(client_key)}
    elif token:
        credentials = {"token": token}
    else:
        raise ValueError("a kubeconfig needs a client certificate + key or a token")
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "streamflow-test", "cluster": {"server": server,
                                                             "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": "streamflow-test", "user": user,
                                                "namespace": namespace}}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on loopback (bind to 0, read, release: fine for a single test session)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL: the process was started in its own session by this module."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver as child processes, with an admin kubeconfig.

    Use as a context manager, or call ``start()``/``stop()``. ``work_dir`` holds the PKI, the etcd
    data, the logs and the kubeconfig; it is deleted on stop only when this object created it.
    """

    bin_dir: Path
    work_dir: Path | None = None
    ready_timeout_s: float = 90.0
    api_port: int = 0
    etcd_port: int = 0
    _owns_dir: bool = field(default=False, init=False)
    _etcd: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _apiserver: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    pki: Pki | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def dir(self) -> Path:
        if self.work_dir is None:
            raise ControlPlaneError("not started")
        return self.work_dir

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    def start(self) -> ControlPlane:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="streamflow-kube-"))
            self._owns_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.pki = generate_pki(self.dir / "pki")
        self.api_port = self.api_port or free_port()
        self.etcd_port = self.etcd_port or free_port()
        try:
            self._start_etcd()
            self._start_apiserver()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        write_kubeconfig(self.kubeconfig, self.url, self.pki.ca_cert, user=ADMIN_USER,
                         client_cert=self.pki.admin_cert, client_key=self.pki.admin_key)
        return self

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.dir / f"{name}.log").open("wb")
        try:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.dir, start_new_session=True)
        finally:
            log.close()

    def _start_etcd(self) -> None:
        peer = free_port()
        client_url, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer}"
        self._etcd = self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--name=default", f"--data-dir={self.dir / 'etcd-data'}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}", "--initial-cluster-state=new",
            # A test store: durability buys nothing and fsync is the slowest part of etcd on a VM.
            "--unsafe-no-fsync=true", "--quota-backend-bytes=2147483648", "--log-level=warn",
            "--listen-metrics-urls=", "--enable-pprof=false",
        ])

    def _start_apiserver(self) -> None:
        assert self.pki is not None
        pki = self.pki
        self._apiserver = self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--cert-dir={self.dir / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # RBAC only, as in a real cluster: the Airflow Role from the manifests is what grants access.
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--allow-privileged=true",
            "--profiling=false", "--v=1",
        ])

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def wait_ready(self) -> None:
        """Poll ``/readyz`` (all post-start hooks done: RBAC bootstrap roles, CRD informers...)."""
        deadline = time.monotonic() + self.ready_timeout_s
        ctx = self._ssl_context()
        last = ""
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self._etcd), ("kube-apiserver", self._apiserver)):
                if proc is not None and proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n"
                                            f"{_log_tail(self.dir / f'{name}.log')}")
            try:
                # https://127.0.0.1 only (self.url), never a caller-provided scheme.
                with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = f"HTTP {error.code}: {error.read().decode(errors='replace')[-400:]}"
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.25)
        raise ControlPlaneError(f"kube-apiserver not ready after {self.ready_timeout_s:.0f} s ({last}):\n"
                                f"{_log_tail(self.dir / 'kube-apiserver.log')}")

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True,
                kubeconfig: Path | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with the control plane against it."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        if check and proc.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                    f"{proc.stderr.strip()}\n{proc.stdout.strip()[-2000:]}")
        return proc

    def install_crds(self, files: list[Path], only: Set[str] | None = None, timeout_s: float = 120) -> list[str]:
        """Server-side apply the CRDs (those named in ``only``, if given) and wait until each is
        Established (served); return their names.

        Each CRD costs the API server a schema compilation (seconds for CloudNativePG's 400 kB ones
        on a busy 2-core machine), so callers install what they use rather than every CRD cached.
        """
        docs = crd_documents(files)
        chosen = {n: d for n, d in docs.items() if only is None or n in only}
        unknown = (only or set()) - set(docs)
        if unknown or not chosen:
            raise ControlPlaneError(f"CRDs {sorted(unknown) or '(any)'} not in {[str(f) for f in files]}")
        self.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=streamflow-testenv",
                     "-f", "-", input_text=yaml.safe_dump_all(list(chosen.values()), sort_keys=False))
        # Polled through the API rather than `kubectl wait`, which fails instead of waiting while
        # .status.conditions is still empty right after the create (so do jsonpath filters on it).
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [name for name in sorted(chosen) if not self._crd_established(name)]
            if not pending:
                return sorted(chosen)
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRDs not Established after {timeout_s:.0f} s: {pending}")
            time.sleep(0.2)

    def _crd_established(self, name: str) -> bool:
        url = f"{self.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        with urllib.request.urlopen(url, context=self._ssl_context(), timeout=10) as response:  # noqa: S310
            crd = json.load(response)
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def stop(self) -> None:
        _stop(self._apiserver)
        _stop(self._etcd)
        self._apiserver = self._etcd = None
        if self._owns_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main() -> int:
    """``python -m tests.k8s_testenv [WORK_DIR]``: start a control plane and keep it in the
    foreground until Ctrl-C (what ``make k8s-api`` runs)."""
    import sys

    # A background start (scripts/k8s_api.sh --background) inherits SIGINT as ignored and is stopped
    # with SIGTERM: both must unwind through the `with` below, which stops the children.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / ".streamflow" / "k8s-api"
    if work_dir.exists():
        shutil.rmtree(work_dir / "etcd-data", ignore_errors=True)
    started = time.monotonic()
    plane = ControlPlane(ensure_binaries(), work_dir=work_dir,
                         api_port=int(os.environ.get("STREAMFLOW_K8S_API_PORT", "0")))
    with plane:
        crds = plane.install_crds(ensure_crds())  # by hand: all of them, whatever one tries
        print(f"kube-apiserver ready in {time.monotonic() - started:.1f} s at {plane.url} "
              f"({len(crds)} CRDs installed)")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        print("Ctrl-C stops etcd and kube-apiserver.", flush=True)
        try:
            while all(p is not None and p.poll() is None for p in (plane._etcd, plane._apiserver)):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        print("control plane process exited or interrupted; stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
