"""A real single-node Kubernetes cluster built from processes on this machine (issue 15, step B).

ADR 0005's harness (tests/k8s_testenv.py) runs etcd + kube-apiserver only: objects are stored,
nothing runs. This module adds everything a pod needs to actually run, still without Docker, kind or
any registry: kube-controller-manager, kube-scheduler, containerd (runc, cgroupfs driver), kubelet,
kube-proxy (iptables), the CNI bridge + host-local plugins and CoreDNS, all as child processes, with
every file (PKI, etcd data, containerd root/state, kubelet root, pod logs, CNI state, logs) under one
state directory so the whole cluster can be deleted.

Network (never 10/8, 172.16/12 or 192.168/16; everything stays on this machine):
  - a Linux bridge ``sfk8s0`` with the node address ``198.18.0.1/24``; pods get ``198.18.0.0/24``
    from host-local IPAM on that bridge; the API server, the kubelet, CoreDNS and the services a
    pod must reach on the host (Kafka, PostgreSQL) listen on the node address;
  - services get ``198.19.0.0/24`` (kube-proxy, iptables mode; NodePorts only on the node address);
  - CoreDNS answers on ``198.18.0.1:53`` (the kubelet's clusterDNS).

Runtime quirks of this VM (ADR 0011): cgroup v1 with an empty cgroup2 at /sys/fs/cgroup/unified, no
systemd (cgroupfs driver everywhere, kubelet ``failCgroupV1: false``), nofile hard limit 20000 (the
kubelet's maxOpenFiles), and no registry: the pod sandbox image is a static ``pause`` binary built
here with Go (tests/k8s_cluster/pause.go) and imported like our own images.

``python -m tests.k8s_cluster_env up|down|status [STATE_DIR]`` is what scripts/k8s_cluster.sh runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.k8s_testenv import (
    ADMIN_USER,
    ControlPlaneError,
    Pki,
    free_port,
    generate_pki,
    write_kubeconfig,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR_DEFAULT = REPO_ROOT / ".streamflow" / "k8s-bin" / "kube-v1.36.3-etcd-v3.6.8"
IMAGE_ARCHIVES_DEFAULT = REPO_ROOT / ".streamflow" / "k8s-images" / "archives"
PAUSE_SOURCE = REPO_ROOT / "tests" / "k8s_cluster" / "pause.go"

BRIDGE = "sfk8s0"
NODE_IP = "198.18.0.1"
POD_CIDR = "198.18.0.0/24"
SERVICE_CIDR = "198.19.0.0/24"
SERVICE_IP = "198.19.0.1"  # the `kubernetes` Service
API_PORT = 6443
NODE_NAME = "streamflow-node"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "docker.io/streamflow/pause:3.10"
NOFILE_LIMIT = 20000  # this VM's hard limit; the kubelet's default (1000000) cannot be set
CNI_BIN_DIR = Path("/usr/lib/cni")
DEBIAN_PACKAGES = {"containerd": "/usr/bin/containerd", "runc": "/usr/sbin/runc", "crun": "/usr/bin/crun",
                   "containernetworking-plugins": "/usr/lib/cni/bridge", "iptables": "/usr/sbin/iptables",
                   "conntrack": "/usr/sbin/conntrack",
                   # forwards the node address to the local stack's PostgreSQL (expose_local_stack)
                   "socat": "/usr/bin/socat"}
#: Figures measured by the tests in tests/k8s_cluster (one dict for the conftest and the test module:
#: pytest imports a conftest under its own module name, so a dict defined there would be a second copy).
FIGURES: dict[str, object] = {}
# Start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "containerd", "kube-controller-manager", "kube-scheduler",
              "kubelet", "kube-proxy", "coredns", "flink-operator")


class ClusterError(ControlPlaneError):
    """A cluster component could not be set up or did not become ready."""


def _log(message: str, started: float | None = None) -> None:
    prefix = f"[k8s-cluster {time.monotonic() - started:6.1f}s]" if started is not None else "[k8s-cluster]"
    print(f"{prefix} {message}", flush=True)


def _run(argv: list[str], *, check: bool = True, timeout_s: float = 120, input_text: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False,
                          input=input_text, env=env)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_debian_packages() -> None:
    """containerd, runc/crun, the CNI plugins, iptables, conntrack and socat from Debian (idempotent)."""
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ClusterError(f"missing Debian packages (run as root): apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if _run(argv, check=False, timeout_s=900, env=env).returncode != 0:
        _run(["apt-get", "update", "-qq"], timeout_s=600, env=env)
        _run(argv, timeout_s=900, env=env)


# --- images --------------------------------------------------------------------------------------


def build_pause_archive(out: Path) -> Path:
    """A docker-archive of a one-layer image holding a static ``/pause`` (built from pause.go)."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = out.parent.parent / "pause-build"  # next to archives/, not in it
    build.mkdir(exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "", "GO111MODULE": "off",
           "GOCACHE": str(build / "gocache")}
    _run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(build / "pause"), str(PAUSE_SOURCE)],
         env=env, timeout_s=300)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(build / "pause"), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        with (build / "pause").open("rb") as binary:
            tar.addfile(info, binary)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "tests/k8s_cluster/pause.go (static Go build)"}],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer.tar"]}]).encode()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w") as tar:
        for name, data in (("layer.tar", layer_bytes), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.rename(out)
    return out


# --- the cluster ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A single-node cluster under ``state_dir``; ``start()`` returns once the node is Ready and
    CoreDNS answers; ``stop()`` removes every process, mount, network device and iptables rule it made.

    The PIDs are written to ``state_dir/pids.json`` so that another process (``down``) can stop a
    cluster started by ``up``.
    """

    state_dir: Path
    bin_dir: Path = BIN_DIR_DEFAULT
    runtime: str = "runc"  # or "crun"
    ready_timeout_s: float = 240.0
    timings: dict[str, float] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)
    _exe: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    pki: Pki | None = field(default=None, init=False)

    # -- paths
    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def url(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    @property
    def pids_file(self) -> Path:
        return self.state_dir / "pids.json"

    # -- helpers
    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True,
                timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return _run([str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
                    input_text=input_text, check=check, timeout_s=timeout_s)

    def ctr(self, *args: str, check: bool = True, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
        return _run(["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args],
                    check=check, timeout_s=timeout_s)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None, exe: str = "") -> None:
        """Start ``argv`` in its own session, logging to logs/<name>.log; ``exe`` is the program name
        the process ends up as (after an exec), checked before it is ever signalled."""
        self._exe[name] = exe or argv[0]
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self._procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, cwd=self.state_dir,
                                                 start_new_session=True, env=env)
        self._save_pids()

    def _save_pids(self) -> None:
        known = json.loads(self.pids_file.read_text()) if self.pids_file.exists() else {}
        known.update({n: [p.pid, self._exe[n]] for n, p in self._procs.items()})
        self.pids_file.write_text(json.dumps(known, indent=1))

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{_tail(self.logs / f'{name}.log')}")

    def _wait(self, what: str, probe: Callable[[], bool], timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(0.5)
        raise ClusterError(f"{what}: not ready after {timeout_s or self.ready_timeout_s:.0f} s")

    # -- start
    def start(self) -> Cluster:
        started = time.monotonic()
        if self.pids_file.exists():
            raise ClusterError(f"{self.pids_file} exists: a cluster may be running; run `down` first")
        ensure_debian_packages()
        missing = [b for b in ("etcd", "kube-apiserver", "kubectl", "kube-controller-manager", "kube-scheduler",
                               "kubelet", "kube-proxy", "coredns") if not os.access(self.bin_dir / b, os.X_OK)]
        if missing:
            raise ClusterError(f"{self.bin_dir} lacks {', '.join(missing)}: bash scripts/build_k8s_binaries.sh node")
        # A fresh control plane each time (new PKI, empty etcd, no kubelet/CNI state); containerd's
        # root (the imported images) is kept: re-importing the flink image alone takes ~40 s.
        for sub in ("etcd-data", "kubelet", "pod-logs", "cni", "operator", "volumes"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        for sub in ("etcd-data", "containerd", "kubelet", "pod-logs", "cni", "logs"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._network()
            _log(f"bridge {BRIDGE} {NODE_IP}/24 up", started)
            self.pki = generate_pki(self.state_dir / "pki", hosts=("127.0.0.1", "localhost", NODE_IP, SERVICE_IP))
            write_kubeconfig(self.kubeconfig, self.url, self.pki.ca_cert, user=ADMIN_USER,
                             client_cert=self.pki.admin_cert, client_key=self.pki.admin_key)
            self._start_etcd_apiserver()
            self._wait("kube-apiserver /readyz",
                       lambda: self.kubectl("get", "--raw=/readyz", check=False, timeout_s=10).returncode == 0)
            self.timings["apiserver_ready_s"] = round(time.monotonic() - started, 1)
            _log("etcd + kube-apiserver ready", started)
            self._start_containerd()
            self._wait("containerd", lambda: _run(["ctr", "--address", str(self.containerd_socket), "version"],
                                                  check=False, timeout_s=10).returncode == 0)
            _log("containerd ready", started)
            t0 = time.monotonic()
            # A build artifact, cached with the other image archives (the state dir of a test session
            # is wiped each time; the Go build takes 1 s idle, up to a minute on a loaded machine).
            self.ctr("images", "import", str(build_pause_archive(IMAGE_ARCHIVES_DEFAULT / "pause-3.10.tar")))
            _log(f"pause image imported ({time.monotonic() - t0:.1f} s)", started)
            self._start_controllers()
            self._start_kubelet()
            self._start_kube_proxy()
            self._start_coredns()
            self._wait("node Ready", self._node_ready)
            self.timings["node_ready_s"] = round(time.monotonic() - started, 1)
            _log(f"node {NODE_NAME} Ready", started)
            self._wait("default ServiceAccount", lambda: self.kubectl(
                "get", "serviceaccount", "default", "-n", "default", check=False, timeout_s=10).returncode == 0)
            self._wait("CoreDNS", self._dns_answers)
            self.timings["cluster_ready_s"] = round(time.monotonic() - started, 1)
            _log(f"cluster ready in {self.timings['cluster_ready_s']} s; export KUBECONFIG={self.kubeconfig}",
                 started)
            (self.state_dir / "timings.json").write_text(json.dumps(self.timings, indent=1))
        except BaseException:
            self.stop()
            raise
        return self

    def _network(self) -> None:
        """The bridge the CNI plugin attaches pods to, created ahead with the node address so the API
        server can listen there before the first pod; IP forwarding on (restored by stop)."""
        forward = Path("/proc/sys/net/ipv4/ip_forward")
        saved = self.state_dir / "ip_forward.saved"
        if not saved.exists():
            saved.write_text(forward.read_text().strip())
        forward.write_text("1")
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        addrs = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
        if f"{NODE_IP}/24" not in addrs:
            _run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        # br_netfilter: bridged pod-to-pod traffic must traverse iptables for Service DNAT (hairpin).
        nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        if nf.exists() and nf.read_text().strip() != "1":
            raise ClusterError("net.bridge.bridge-nf-call-iptables is 0: Services would not work between pods")
        cni_dir = self.state_dir / "cni" / "net.d"
        cni_dir.mkdir(parents=True, exist_ok=True)
        (cni_dir / "10-streamflow.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "streamflow",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": str(self.state_dir / "cni" / "ipam"),
                          "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP,
                                       "rangeStart": "198.18.0.10", "rangeEnd": "198.18.0.250"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
            ],
        }, indent=1))

    def _start_etcd_apiserver(self) -> None:
        assert self.pki is not None
        pki, d = self.pki, self.state_dir
        etcd_port, peer_port = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--name=default", f"--data-dir={d / 'etcd-data'}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}", "--initial-cluster-state=new",
            "--unsafe-no-fsync=true", "--quota-backend-bytes=2147483648", "--log-level=warn",
            "--listen-metrics-urls=", "--enable-pprof=false",
        ])
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"), f"--etcd-servers={client_url}",
            f"--bind-address={NODE_IP}", f"--advertise-address={NODE_IP}", f"--secure-port={API_PORT}",
            f"--cert-dir={d / 'pki'}", f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}", f"--client-ca-file={pki.ca_cert}",
            f"--kubelet-client-certificate={pki.admin_cert}", f"--kubelet-client-key={pki.admin_key}",
            "--kubelet-preferred-address-types=InternalIP",  # the node name is not in any DNS
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            "--api-audiences=https://kubernetes.default.svc.cluster.local", "--allow-privileged=true",
            "--profiling=false", "--v=1",
        ])

    def _start_containerd(self) -> None:
        d = self.state_dir / "containerd"
        runtime_binary = {"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}[self.runtime]
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
oom_score = 0
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{d / 'containerd-ttrpc.sock'}"
[metrics]
  address = ""
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{self.runtime}"
    [{cri}.containerd.runtimes.{self.runtime}]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.{self.runtime}.options]
        BinaryName = "{runtime_binary}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{self.state_dir / 'cni' / 'net.d'}"
    max_conf_num = 1
"""
        (d / "config.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(d / "config.toml")])

    def _start_controllers(self) -> None:
        assert self.pki is not None
        self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
            f"--service-account-private-key-file={self.pki.sa_key}", f"--root-ca-file={self.pki.ca_cert}",
            f"--cluster-signing-cert-file={self.pki.ca_cert}", f"--cluster-signing-key-file={self.pki.ca_key}",
            "--use-service-account-credentials=false", "--allocate-node-cidrs=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--controllers=*,-nodeipam", "--v=1",
        ])
        self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"), f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false", "--v=1",
        ])

    def _start_kubelet(self) -> None:
        assert self.pki is not None
        d = self.state_dir / "kubelet"
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": NODE_IP, "port": 10250, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(self.pki.ca_cert)}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "cgroupsPerQOS": True,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [NODE_IP], "clusterDomain": CLUSTER_DOMAIN, "resolvConf": "/etc/resolv.conf",
            "podLogsDir": str(self.state_dir / "pod-logs"), "maxOpenFiles": NOFILE_LIMIT,
            "failSwapOn": False, "podCIDR": POD_CIDR, "maxPods": 30,
            "evictionHard": {"memory.available": "200Mi", "nodefs.available": "3%", "imagefs.available": "3%"},
            "imageGCHighThresholdPercent": 97, "imageGCLowThresholdPercent": 95,
            "serializeImagePulls": False, "registerNode": True, "enableServer": True,
            "protectKernelDefaults": False, "localStorageCapacityIsolation": True,
        }
        (d / "config.yaml").write_text(yaml.safe_dump(config))
        self._spawn("kubelet", [
            str(self.bin_dir / "kubelet"), f"--config={d / 'config.yaml'}", f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={d}", f"--cert-dir={d / 'pki'}", f"--node-ip={NODE_IP}",
            f"--hostname-override={NODE_NAME}", "--v=1",
        ])

    def _start_kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig)}, "mode": "iptables",
            "clusterCIDR": POD_CIDR, "hostnameOverride": NODE_NAME, "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # The VM's conntrack table is sized already; writing nf_conntrack_max is not needed.
            "conntrack": {"maxPerCore": 0, "min": 0},
            "nodePortAddresses": [f"{NODE_IP}/32"],
        }
        path = self.state_dir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [str(self.bin_dir / "kube-proxy"), f"--config={path}", "--v=1"])

    def _start_coredns(self) -> None:
        corefile = self.state_dir / "Corefile"
        corefile.write_text(f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {NODE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {self.kubeconfig} {ADMIN_USER}
        pods insecure
    }}
    cache 5
}}
.:53 {{
    bind {NODE_IP}
    errors
    forward . /etc/resolv.conf
    cache 30
}}
""")
        self._spawn("coredns", [str(self.bin_dir / "coredns"), "-conf", str(corefile)])

    def _node_ready(self) -> bool:
        out = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False, timeout_s=10)
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout)["status"].get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _dns_answers(self) -> bool:
        """CoreDNS resolves the API server's Service name (it has synced with the API server)."""
        import socket as _socket
        import struct

        name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
        query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
        query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
        query += struct.pack(">HH", 1, 1)
        with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(query, (NODE_IP, 53))
            answer = sock.recv(512)
        return bytes(int(x) for x in SERVICE_IP.split(".")) in answer[len(query):]

    def install_crds(self, files: list[Path], timeout_s: float = 120) -> None:
        """Server-side apply CRD files and poll until each is Established (``kubectl wait`` fails
        instead of waiting while .status.conditions is still empty right after the create)."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     input_text="\n---\n".join(f.read_text() for f in files))
        names = [str(d["metadata"]["name"]) for f in files for d in yaml.safe_load_all(f.read_text())
                 if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
        jsonpath = "{.status.conditions[?(@.type=='Established')].status}"
        for name in names:
            self._wait(f"CRD {name} Established", lambda n=name: self.kubectl(  # type: ignore[misc]
                "get", "crd", n, "-o", f"jsonpath={jsonpath}", check=False).stdout == "True", timeout_s)

    # -- images
    def import_images(self, archives: list[Path]) -> dict[str, float]:
        """``ctr -n k8s.io images import`` each docker-archive; returns seconds per archive.

        containerd's content store under the state dir survives ``down``: an archive whose image id
        (``<archive>.id``, written by scripts/k8s_images.sh) was imported before and whose image is
        still listed is skipped (0.0 s).
        """
        took: dict[str, float] = {}
        listed = set(self.ctr("images", "ls", "-q").stdout.split())
        marks = self.state_dir / "images"
        marks.mkdir(parents=True, exist_ok=True)
        for archive in archives:
            id_file = archive.with_name(archive.name + ".id")
            image_id = id_file.read_text().strip() if id_file.exists() else ""
            mark = marks / f"{archive.name}.imported"
            name = f"docker.io/streamflow/{archive.name.rsplit('-', 1)[0]}:{archive.name.rsplit('-', 1)[1][:-4]}"
            if image_id and mark.exists() and mark.read_text() == image_id and name in listed:
                took[archive.name] = 0.0
                continue
            t0 = time.monotonic()
            self.ctr("images", "import", str(archive))
            took[archive.name] = round(time.monotonic() - t0, 1)
            if image_id:
                mark.write_text(image_id)
        return took

    # -- stop
    def stop(self) -> list[str]:
        """Stop everything this cluster made; return what was done (for the report/log)."""
        done: list[str] = []
        pids = self._known_pids()
        # Controllers first (the operator, the controller-manager's ReplicaSets would recreate what is
        # deleted next), then every pod while the kubelet still runs: it stops the containers and tears
        # down their network namespaces and volume mounts the regular way.
        for name in ("flink-operator", "kube-controller-manager", "kube-scheduler"):
            if name in pids and _stop_pid(*pids.pop(name)):
                done.append(f"stopped {name}")
        if "kube-apiserver" in pids and "kubelet" in pids:
            self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=2", "--wait=false",
                         check=False, timeout_s=60)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                out = self.kubectl("get", "pods", "-A", "-o", "name", check=False, timeout_s=10)
                if out.returncode != 0 or not out.stdout.strip():
                    break
                time.sleep(1)
            done.append("deleted all pods")
        for name in reversed(COMPONENTS):
            if name in pids and _stop_pid(*pids[name]):
                done.append(f"stopped {name} (pid {pids[name][0]})")
        # containerd shims (and any container under them) outlive containerd by design.
        for pid in _shim_pids(self.containerd_socket):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                done.append(f"killed containerd shim pid {pid}")
        self._procs.clear()
        self.pids_file.unlink(missing_ok=True)
        done += self._cleanup_host()
        return done

    def _known_pids(self) -> dict[str, tuple[int, str]]:
        known = ({n: (int(v[0]), str(v[1])) for n, v in json.loads(self.pids_file.read_text()).items()}
                 if self.pids_file.exists() else {})
        known.update({n: (p.pid, self._exe.get(n, "")) for n, p in self._procs.items()})
        return known

    def _cleanup_host(self) -> list[str]:
        done: list[str] = []
        if self.bin_dir.joinpath("kube-proxy").exists():
            _run([str(self.bin_dir / "kube-proxy"), "--cleanup"], check=False)
            done.append("kube-proxy --cleanup (KUBE-* iptables chains)")
        done += _remove_kube_iptables()
        root = str(self.state_dir.resolve())
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(root)]
        for mount in sorted(mounts, key=len, reverse=True):
            if _run(["umount", "-l", mount], check=False).returncode == 0:
                done.append(f"umount {mount}")
        for netns in Path("/var/run/netns").glob("cni-*") if Path("/var/run/netns").exists() else []:
            # CRI's network namespaces of sandboxes this containerd created and did not remove.
            if (self.state_dir / "containerd").exists() and _netns_is_ours(netns, self.state_dir):
                _run(["ip", "netns", "delete", netns.name], check=False)
                done.append(f"ip netns delete {netns.name}")
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            _run(["ip", "link", "delete", BRIDGE], check=False)
            done.append(f"ip link delete {BRIDGE}")
        saved = self.state_dir / "ip_forward.saved"
        if saved.exists():
            Path("/proc/sys/net/ipv4/ip_forward").write_text(saved.read_text().strip())
            done.append(f"net.ipv4.ip_forward restored to {saved.read_text().strip()}")
            saved.unlink()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            kubepods = hierarchy / "kubepods"
            if kubepods.is_dir():
                for sub in sorted((p for p in kubepods.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                  reverse=True):
                    with contextlib.suppress(OSError):
                        sub.rmdir()
                with contextlib.suppress(OSError):
                    kubepods.rmdir()
                    done.append(f"rmdir {kubepods}")
        return done


def _stop_pid(pid: int, exe: str, timeout_s: float = 20) -> bool:
    """SIGTERM then SIGKILL ``pid`` if it is still the process we started (its argv[0] matches)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    if Path(argv0).name != Path(exe).name:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
    return True


def pod_rss_bytes(pod_uid: str) -> int:
    """Resident memory of every process of a pod (its containers and its sandbox), summed from
    /proc/<pid>/status VmRSS of the pids in the pod's memory cgroup (cgroupfs driver, cgroup v1:
    /sys/fs/cgroup/memory/kubepods[/<qos>]/pod<uid>/<container>)."""
    root = Path("/sys/fs/cgroup/memory/kubepods")
    total = 0
    for pod_dir in root.rglob(f"pod{pod_uid}"):
        for procs in pod_dir.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
    return total


def _remove_kube_iptables() -> list[str]:
    """The kubelet's own chains, which ``kube-proxy --cleanup`` leaves: KUBE-FIREWALL (drops packets
    to 127.0.0.0/8 from other sources, in INPUT and OUTPUT), KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT,
    in iptables and ip6tables. Only KUBE-* rules and chains are touched."""
    done: list[str] = []
    for tool in ("iptables", "ip6tables"):
        if not shutil.which(tool):
            continue
        for table in ("filter", "nat", "mangle"):
            rules = _run([tool, "-w", "-t", table, "-S"], check=False).stdout.splitlines()
            for rule in rules:
                parts = rule.split()
                jumps_to_kube = parts[:1] == ["-A"] and not parts[1].startswith("KUBE-") and "KUBE-" in rule
                if jumps_to_kube and _run([tool, "-w", "-t", table, "-D", *parts[1:]], check=False).returncode == 0:
                    done.append(f"{tool} -t {table} -D {' '.join(parts[1:])}")
            for rule in rules:
                parts = rule.split()
                if parts[:1] == ["-N"] and parts[1].startswith("KUBE-"):
                    _run([tool, "-w", "-t", table, "-F", parts[1]], check=False)
            for rule in rules:
                parts = rule.split()
                if parts[:1] == ["-N"] and parts[1].startswith("KUBE-") and _run(
                        [tool, "-w", "-t", table, "-X", parts[1]], check=False).returncode == 0:
                    done.append(f"{tool} -t {table} -X {parts[1]}")
    return done


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _shim_pids(socket: Path) -> list[int]:
    """containerd-shim-runc-v2 processes started by the containerd listening on ``socket``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            found.append(int(proc.name))
    return found


def _netns_is_ours(netns: Path, state_dir: Path) -> bool:
    """A CRI netns is ours if a sandbox of our containerd referenced it (its id is in our state dir)."""
    return any(netns.name in p.read_text(errors="ignore")
               for p in (state_dir / "containerd").rglob("config.json") if p.stat().st_size < 1_000_000)


# --- the local stack, reached from pods ----------------------------------------------------------


@dataclass(frozen=True)
class StackEndpoints:
    """Where pods reach the local stack's Kafka and PostgreSQL (the node address)."""

    kafka_bootstrap: str
    jdbc_url: str
    postgres_host: str
    postgres_port: int
    user: str
    password: str


def expose_local_stack(settings: Any, state_dir: Path, kafka_node_port: int | None = None) -> StackEndpoints:
    """Make the running local stack (``streamflow up --only postgres,kafka``) reachable from pods.

    The local stack listens on loopback only (settings refuse anything else), which a pod cannot
    reach: its 127.0.0.1 is its own. Two changes, both test-side:
      - Kafka: restarted with a second listener ``NODE://198.18.0.1:<kafka_port + 100>`` advertised as
        such (a TCP forward is not enough: a client connects to the advertised address after
        bootstrap, and the loopback one means the pod itself; Kafka refuses two IPv4 listeners on
        one port);
      - PostgreSQL: a socat forward from ``198.18.0.1:<postgres_port>`` to loopback (pg_hba then sees
        127.0.0.1, which the stack's initdb allows with scram-sha-256).
    Topics and warehouse migrations are applied as bootstrap_pipeline would.
    """
    from streamflow.stack.kafka import KafkaService
    from streamflow.topics import ensure_topics
    from streamflow.warehouse import apply_migrations

    class NodeListenerKafka(KafkaService):
        def render_config(self) -> str:
            s = self.settings
            lines = []
            for line in super().render_config().splitlines():
                if line.startswith("listeners="):
                    line += f",NODE://{NODE_IP}:{node_port}"
                elif line.startswith("advertised.listeners="):
                    line = line.replace(f"PLAINTEXT://{s.host}:{s.kafka_port}",
                                        f"PLAINTEXT://{s.host}:{s.kafka_port},NODE://{NODE_IP}:{node_port}")
                elif line.startswith("listener.security.protocol.map="):
                    line += ",NODE:PLAINTEXT"
                lines.append(line)
            return "\n".join(lines)

    node_port = kafka_node_port or settings.kafka_port + 100
    kafka = NodeListenerKafka(settings)
    if f"NODE://{NODE_IP}" not in (kafka.config_file.read_text() if kafka.config_file.exists() else ""):
        kafka.stop()
        kafka.prepare()
        kafka.start()
        kafka.wait_ready()
    proxy_pid = state_dir / "postgres-forward.pid"
    if not (proxy_pid.exists() and Path(f"/proc/{proxy_pid.read_text().strip()}").exists()):
        with (state_dir / "logs" / "postgres-forward.log").open("ab") as log:
            proc = subprocess.Popen(
                ["socat", f"TCP-LISTEN:{settings.postgres_port},bind={NODE_IP},reuseaddr,fork",
                 f"TCP:{settings.postgres_host}:{settings.postgres_port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        proxy_pid.write_text(str(proc.pid))
    ensure_topics(settings)
    apply_migrations(settings)
    return StackEndpoints(
        kafka_bootstrap=f"{NODE_IP}:{node_port}",
        jdbc_url=f"jdbc:postgresql://{NODE_IP}:{settings.postgres_port}/{settings.warehouse_db}",
        postgres_host=NODE_IP, postgres_port=settings.postgres_port,
        user=settings.postgres_user, password=settings.resolved_postgres_password,
    )


def unexpose_local_stack(state_dir: Path) -> list[str]:
    """Stop the PostgreSQL forward (Kafka keeps its extra listener until `streamflow down`)."""
    proxy_pid = state_dir / "postgres-forward.pid"
    if not proxy_pid.exists():
        return []
    pid = int(proxy_pid.read_text().strip())
    proxy_pid.unlink()
    return [f"stopped postgres forward (pid {pid})"] if _stop_pid(pid, "socat") else []


# --- the Flink Kubernetes Operator ---------------------------------------------------------------

OPERATOR_DIR_DEFAULT = REPO_ROOT / ".streamflow" / "k8s-operator" / "1.10.0"
OPERATOR_JAR = "flink-kubernetes-operator-1.10.0-shaded.jar"
FLINK_NAMESPACE = "streamflow-processing"


def flink_namespace_objects(endpoints: StackEndpoints, state_dir: Path) -> list[dict[str, Any]]:
    """What the operator's Helm chart and the overlay would create around a FlinkDeployment here: the
    namespace, the ``flink`` ServiceAccount + Role the JobManager uses to create TaskManager pods,
    the warehouse Secret, and the ``flink-data`` claim bound to a hostPath volume under the state
    dir (this cluster has no storage provisioner)."""
    volume = state_dir / "volumes" / "flink-data"
    volume.mkdir(parents=True, exist_ok=True)
    os.chown(volume, 9999, 9999)  # the Flink image's user; hostPath ignores fsGroup
    ns = FLINK_NAMESPACE
    rules = [
        {"apiGroups": [""], "resources": ["pods", "configmaps", "services", "persistentvolumeclaims"],
         "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "deployments/finalizers", "replicasets"],
         "verbs": ["*"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flink", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "flink", "namespace": ns}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "flink-role-binding", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "flink"},
         "subjects": [{"kind": "ServiceAccount", "name": "flink", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
         "metadata": {"name": "warehouse-credentials", "namespace": ns},
         "stringData": {"username": endpoints.user, "password": endpoints.password}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "streamflow-flink-data"},
         "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                  "hostPath": {"path": str(volume), "type": "Directory"},
                  "claimRef": {"namespace": ns, "name": "flink-data"}}},
        {**yaml.safe_load((REPO_ROOT / "k8s" / "base" / "flink" / "flink-data-pvc.yaml").read_text()),
         } | {"spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "",
                       "resources": {"requests": {"storage": "10Gi"}}, "volumeName": "streamflow-flink-data"}},
    ]


CONSOLE_LOG4J = """rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


# Flink's own Java 17 module flags (env.java.opts.all of the config.yaml inside the locked PyFlink,
# which the image ships as /opt/flink/conf). The operator mounts ITS generated configuration over
# /opt/flink/conf, so without them the job fails at submission: "InaccessibleObjectException: Unable to
# make field private final java.util.Map java.util.Collections$UnmodifiableMap.m accessible: module
# java.base does not "opens java.util" to unnamed module". k8s/base/flink/*.yaml need the same.
FLINK_JAVA17_OPTS = " ".join([
    *(f"--add-exports={m}=ALL-UNNAMED" for m in (
        "java.base/sun.net.util", "java.rmi/sun.rmi.registry", "jdk.compiler/com.sun.tools.javac.api",
        "jdk.compiler/com.sun.tools.javac.file", "jdk.compiler/com.sun.tools.javac.parser",
        "jdk.compiler/com.sun.tools.javac.tree", "jdk.compiler/com.sun.tools.javac.util",
        "java.security.jgss/sun.security.krb5")),
    *(f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
        "java.lang", "java.net", "java.io", "java.nio", "sun.nio.ch", "java.lang.reflect", "java.text",
        "java.time", "java.util", "java.util.concurrent", "java.util.concurrent.atomic",
        "java.util.concurrent.locks")),
])



def operator_identity() -> list[dict[str, Any]]:
    """The operator's namespace, service account and its (test-only) cluster-admin binding."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "streamflow-system"}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "flink-operator", "namespace": "streamflow-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "streamflow-flink-operator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "flink-operator", "namespace": "streamflow-system"}]},
    ]

def flink_deployment_for_test(name: str, endpoints: StackEndpoints, settings: Any, *, tm_memory: str = "1536m",
                              parallelism: int = 1, jm_cpu: float = 0.25, tm_cpu: float = 0.5,
                              checkpoint_interval: str | None = None) -> dict[str, Any]:
    """``k8s/base/flink/<name>.yaml`` as the test overlay runs it: rendered by the product
    (``render_flink_deployment``: topic arguments bound to the settings' topics), our image as built
    (flink-python and libpython in it, nothing mounted from the host) and never pulled, Kafka and
    PostgreSQL at the node address, one TaskManager with one slot and a small memory budget, CPU
    requests small enough for three jobs on the 2-core node with limits that let a pod use a core
    while the others idle, and logs on the console (kubectl logs / pod-logs): the operator ships no
    log4j configuration of its own when run outside its chart."""
    from streamflow.runtime.kubernetes import render_flink_deployment

    fd = render_flink_deployment(REPO_ROOT / "k8s" / "base" / "flink" / f"{name}.yaml", settings)
    spec = fd["spec"]
    spec["imagePullPolicy"] = "Never"
    configuration = spec["flinkConfiguration"]
    configuration["taskmanager.numberOfTaskSlots"] = "1"
    # limit = request x factor (Flink's native Kubernetes defaults the factor to 1: a 0.25-CPU JobManager
    # would be throttled to a quarter core while it compiles the job graph)
    configuration["kubernetes.jobmanager.cpu.limit-factor"] = str(round(1.0 / jm_cpu, 2))
    configuration["kubernetes.taskmanager.cpu.limit-factor"] = str(round(1.0 / tm_cpu, 2))
    if checkpoint_interval:
        configuration["execution.checkpointing.interval"] = checkpoint_interval
    spec["taskManager"]["resource"] = {"memory": tm_memory, "cpu": tm_cpu}
    spec["jobManager"]["resource"] = {"memory": "1024m", "cpu": jm_cpu}
    spec["job"]["parallelism"] = parallelism
    spec["logConfiguration"] = {"log4j-console.properties": CONSOLE_LOG4J}
    configuration.setdefault("env.java.opts.all", FLINK_JAVA17_OPTS)
    for container in spec["podTemplate"]["spec"]["containers"]:
        for env in container.get("env", []):
            if env["name"] == "KAFKA_BOOTSTRAP_SERVERS":
                env["value"] = endpoints.kafka_bootstrap
            elif env["name"] == "WAREHOUSE_JDBC_URL":
                env["value"] = endpoints.jdbc_url
    return fd


def operator_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A token kubeconfig for the operator's ServiceAccount (cluster-admin here, as the chart's
    ClusterRole would be for a cluster-wide operator).

    Not the admin certificate: the operator's fabric8 client cannot read the EC P-256 PKCS#8 client
    key the test PKI makes ("java.io.IOException: Invalid DER: object is not integer").
    """
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(operator_identity()))
    assert cluster.pki is not None or (cluster.state_dir / "pki" / "ca.crt").exists()
    token = cluster.kubectl("create", "token", "flink-operator", "-n", "streamflow-system",
                            "--duration=24h").stdout.strip()
    return write_kubeconfig(path, cluster.url, cluster.state_dir / "pki" / "ca.crt", user="flink-operator",
                            token=token, namespace=FLINK_NAMESPACE)


def start_operator_process(cluster: Cluster, operator_dir: Path = OPERATOR_DIR_DEFAULT,
                           namespace: str = FLINK_NAMESPACE,
                           debug_loggers: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """The Flink Kubernetes Operator as a host process with the admin kubeconfig, webhook off.

    The operator talks to each JobManager through ``http://<name>-rest.<namespace>:8081``, a cluster
    DNS name, only when KUBERNETES_SERVICE_HOST is set (else it assumes a developer's port-forward to
    localhost): the JVM runs in its own mount namespace (``unshare --mount``) whose /etc/resolv.conf
    points at the cluster's CoreDNS; host networking stays, so Service IPs work through kube-proxy's
    OUTPUT rules. Nothing changes on the host's /etc/resolv.conf.
    """
    old = cluster._known_pids().get("flink-operator")
    if old:
        _stop_pid(*old)
    work = cluster.state_dir / "operator"
    kubeconfig = operator_kubeconfig(cluster, work / "operator.kubeconfig")
    conf = work / "conf"
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(operator_dir / "conf", conf)
    with (conf / "flink-conf.yaml").open("a") as f:
        f.write(f"""
kubernetes.operator.watched.namespaces: {namespace}
kubernetes.operator.health.probe.enabled: false
kubernetes.operator.reconcile.interval: 15 s
kubernetes.operator.observer.progress-check.interval: 5 s
kubernetes.operator.leader-election.enabled: false
""")
    with (conf / "log4j-console.properties").open("a") as f:
        for i, logger in enumerate(debug_loggers):
            f.write(f"\nlogger.debug{i}.name = {logger}\nlogger.debug{i}.level = DEBUG\n")
    resolv = work / "resolv.conf"
    resolv.write_text(f"nameserver {NODE_IP}\nsearch svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n")
    java = ["java", "-Xms256m", "-Xmx512m", f"-Dlog4j.configurationFile={conf / 'log4j-console.properties'}",
            "-cp", str(operator_dir / OPERATOR_JAR), "org.apache.flink.kubernetes.operator.FlinkOperator"]
    script = f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "FLINK_CONF_DIR": str(conf),
           "FLINK_PLUGINS_DIR": str(operator_dir / "plugins"), "OPERATOR_NAMESPACE": namespace,
           "HOST_IP": NODE_IP,
           # Unset, the operator assumes local development and talks to every JobManager at
           # http://localhost:8081 (FlinkOperatorConfiguration: flinkServiceHostOverride = "localhost").
           "KUBERNETES_SERVICE_HOST": SERVICE_IP, "KUBERNETES_SERVICE_PORT": "443"}
    cluster._spawn("flink-operator", ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                                      script, "sh", *java], env=env, exe="java")
    return cluster._procs["flink-operator"]


OPERATOR_IMAGE = "streamflow/flink-operator:1.10.0"


def ensure_operator_image_archive(archives: Path = IMAGE_ARCHIVES_DEFAULT,
                                  operator_dir: Path = OPERATOR_DIR_DEFAULT) -> Path:
    """``<archives>/flink-operator-1.10.0.tar``: images/flink-operator/Dockerfile built by podman in
    scripts/k8s_images.sh's store (its ``jre`` stage is the Flink image's, cached: seconds) around the
    jar of scripts/k8s_operator_build.sh, saved as a docker-archive for ``ctr images import``."""
    out = archives / "flink-operator-1.10.0.tar"
    if out.is_file():
        return out
    if not (operator_dir / OPERATOR_JAR).is_file():
        raise ClusterError(f"{operator_dir / OPERATOR_JAR} missing: bash scripts/k8s_operator_build.sh")
    cache = archives.parent
    podman = ["podman", "--root", str(cache / "storage"), "--runroot", str(cache / "run"), "--storage-driver",
              "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]
    name = f"docker.io/{OPERATOR_IMAGE}"
    # --network host, as scripts/k8s_images.sh: no podman CNI bridge (its default is 10.88.0.0/16).
    _run([*podman, "build", "--layers", "--network", "host",
          "--build-arg", "BASE_IMAGE=localhost/streamflow/base:bookworm",
          "-f", str(REPO_ROOT / "images" / "flink-operator" / "Dockerfile"), "-t", name, str(operator_dir)],
         timeout_s=1800)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _run([*podman, "save", "--format", "docker-archive", "-o", str(tmp), name], timeout_s=600)
    image_id = _run([*podman, "image", "inspect", "--format", "{{.Id}}", name]).stdout.strip()
    tmp.rename(out)
    out.with_name(out.name + ".id").write_text(image_id + "\n")
    return out


def operator_pod_objects(operator_dir: Path = OPERATOR_DIR_DEFAULT, namespace: str = FLINK_NAMESPACE,
                         image: str = OPERATOR_IMAGE) -> list[dict[str, Any]]:
    """The operator as a pod from our image (images/flink-operator/Dockerfile), webhook off: what the
    Helm chart would install, reduced to a ServiceAccount bound to cluster-admin (the chart's
    ClusterRole is narrower), its configuration as a ConfigMap over /opt/flink/conf, and a Deployment.
    In a pod, KUBERNETES_SERVICE_HOST is set and cluster DNS resolves the JobManagers' REST services."""
    conf = (operator_dir / "conf" / "flink-conf.yaml").read_text() + f"""
kubernetes.operator.watched.namespaces: {namespace}
kubernetes.operator.reconcile.interval: 15 s
kubernetes.operator.observer.progress-check.interval: 5 s
kubernetes.operator.leader-election.enabled: false
"""
    labels = {"app.kubernetes.io/name": "flink-kubernetes-operator", "app.kubernetes.io/part-of": "streamflow"}
    return [
        *operator_identity(),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "flink-operator-config", "namespace": "streamflow-system"},
         "data": {"flink-conf.yaml": conf,
                  "log4j-operator.properties": (operator_dir / "conf" / "log4j-operator.properties").read_text(),
                  "log4j-console.properties": (operator_dir / "conf" / "log4j-console.properties").read_text()}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "flink-kubernetes-operator", "namespace": "streamflow-system", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {
                 "serviceAccountName": "flink-operator",
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 9999, "runAsGroup": 9999,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{
                     "name": "flink-kubernetes-operator", "image": image, "imagePullPolicy": "Never",
                     "args": ["operator"],
                     "env": [{"name": "OPERATOR_NAMESPACE",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                             {"name": "OPERATOR_NAME", "value": "flink-kubernetes-operator"},
                             {"name": "JVM_ARGS", "value": "-Xms256m -Xmx512m"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "512Mi"},
                                   "limits": {"cpu": "1", "memory": "768Mi"}},
                     "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                     "volumeMounts": [{"name": "conf", "mountPath": "/opt/flink/conf"}],
                 }],
                 "volumes": [{"name": "conf", "configMap": {"name": "flink-operator-config"}}],
             }}}},
    ]


def stop_operator_process(cluster: Cluster) -> bool:
    old = cluster._known_pids().get("flink-operator")
    return bool(old) and _stop_pid(*old)  # type: ignore[misc]


@contextlib.contextmanager
def running_cluster(state_dir: Path) -> Iterator[Cluster]:
    cluster = Cluster(state_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    state = Path(argv[2]) if len(argv) > 2 else REPO_ROOT / ".streamflow" / "k8s-cluster"
    state.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(state.resolve(), runtime=os.environ.get("STREAMFLOW_K8S_OCI_RUNTIME", "runc"))
    if command == "up":
        cluster.start()
        archives = [Path(a) for a in argv[3:]]
        if archives:
            t0 = time.monotonic()
            took = cluster.import_images(archives)
            total = round(time.monotonic() - t0, 1)
            _log(f"images imported into containerd k8s.io in {total} s: {took}")
            cluster.timings["image_import_s"] = total
            cluster.timings.update({f"import_{k}": v for k, v in took.items()})
            (state / "timings.json").write_text(json.dumps(cluster.timings, indent=1))
        return 0
    if command == "down":
        for line in cluster.stop():
            _log(line)
        return 0
    if command == "status":
        pids = cluster._known_pids()
        if not pids:
            _log("not running")
            return 1
        for name, (pid, _exe) in pids.items():
            alive = Path(f"/proc/{pid}").exists() and not _is_zombie(pid)
            _log(f"{name:24} pid {pid:7} {'running' if alive else 'DEAD'}")
        print(cluster.kubectl("get", "nodes,pods", "-A", "-o", "wide", check=False).stdout)
        return 0
    print("usage: python -m tests.k8s_cluster_env up|down|status [STATE_DIR [IMAGE_ARCHIVE...]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
