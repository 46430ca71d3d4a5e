"""A kind cluster made from k8s/kind-cluster.yaml, with the worker image loaded and k8s/ applied.

Skips, with the precise reason, when the cluster cannot exist here: no ``kind`` or ``kubectl``
binary, or no Docker engine (with CI=true too: a CI machine without them cannot run a cluster).
With all three present a cluster is expected; then a kind node image that cannot be pulled skips
only outside CI (a machine without registry access) and fails when ``CI=true``
(:func:`create_failure_outcome`). Everything else that goes wrong fails. Set KIND_CLUSTER to reuse
a running cluster (it is then not deleted), KIND_NODE_IMAGE to pick the node image.

Worker pods reach the host's emulators (listening on 127.0.0.1) through TCP forwarders bound
to the kind Docker network's gateway address: only loopback and that network are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from orchestrator.launchers import DEFAULT_WORKER_IMAGE

REPO = Path(__file__).resolve().parents[2]
KIND_CONFIG = REPO / "k8s" / "kind-cluster.yaml"
WORKER_IMAGE = os.environ.get("WORKER_IMAGE", DEFAULT_WORKER_IMAGE)
NAMESPACE = "gcs-import-workers"  # where k8s/ lets the code server run worker pods


@dataclass(frozen=True)
class KindCluster:
    name: str
    context: str
    kubeconfig: Path
    gateway: str


def _run(cmd: list[str], *, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def create_failure_outcome(output: str, *, ci: bool) -> tuple[str, str]:
    """``("skip", reason)`` or ``("fail", message)`` for a failed ``kind create cluster`` with this output.

    Only called once a cluster is expected here (kind and kubectl on PATH, a Docker engine answering).
    A node image that cannot be pulled means no registry is reachable: outside CI that is the machine
    (a sandbox, an offline laptop) and the suite skips; in CI (``ci``, from ``CI=true``) the runner has
    a registry, so it is a failure to fix, not a reason to pass. Any other failure fails everywhere.
    """
    lowered = output.lower()
    tail = output.strip()[-600:]
    if "pull" in lowered or ("image" in lowered and "not found" in lowered):
        if ci:
            return "fail", (f"kind cannot get its node image with CI=true, where kind, kubectl and a Docker "
                            f"engine are present and the kind suite must run:\n{output[-3000:]}")
        return "skip", f"kind cannot get its node image (no registry reachable?): {tail}"
    return "fail", f"kind create cluster failed:\n{output[-3000:]}"


def _docker_reachable() -> str | None:
    try:
        import docker

        docker.from_env().ping()
        return None
    except Exception as exc:
        return f"no Docker engine reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', '<unset>')}): {exc}"


@pytest.fixture(scope="session")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    for binary in ("kind", "kubectl"):
        if shutil.which(binary) is None:
            pytest.skip(f"no `{binary}` binary on PATH: the kind suite needs kind and kubectl "
                        "(and a Docker engine that can pull the kind node image)")
    reason = _docker_reachable()
    if reason:
        pytest.skip(reason)

    name = os.environ.get("KIND_CLUSTER") or yaml.safe_load(KIND_CONFIG.read_text())["name"] + f"-{os.getpid()}"
    reuse = bool(os.environ.get("KIND_CLUSTER"))
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    if not reuse:
        cmd = ["kind", "create", "cluster", "--config", str(KIND_CONFIG), "--name", name,
               "--kubeconfig", str(kubeconfig), "--wait", "180s"]
        if os.environ.get("KIND_NODE_IMAGE"):
            cmd += ["--image", os.environ["KIND_NODE_IMAGE"]]
        proc = _run(cmd, check=False, timeout=900)
        if proc.returncode != 0:
            _run(["kind", "delete", "cluster", "--name", name], check=False)
            outcome, message = create_failure_outcome(proc.stdout + proc.stderr, ci=os.environ.get("CI") == "true")
            if outcome == "skip":
                pytest.skip(message)
            pytest.fail(message)
    else:
        _run(["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)])
    try:
        _run(["kind", "load", "docker-image", WORKER_IMAGE, "--name", name])
        context = f"kind-{name}"
        kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "--context", context]
        _run([*kubectl, "apply", "-k", str(REPO / "k8s")])
        _run([*kubectl, "-n", NAMESPACE, "wait", "--for=jsonpath={.metadata.name}=gcs-import-worker",
              "serviceaccount/gcs-import-worker", "--timeout=60s"])
        network = json.loads(_run(["docker", "network", "inspect", "kind"]).stdout)[0]
        gateway = next(cfg["Gateway"] for cfg in network["IPAM"]["Config"] if "." in cfg.get("Gateway", ""))
        yield KindCluster(name=name, context=context, kubeconfig=kubeconfig, gateway=gateway)
    finally:
        if not reuse:
            _run(["kind", "delete", "cluster", "--name", name], check=False)


class _Forwarder:
    """Accept on (bind_host, any port) and pipe each connection to target; stops with the session."""

    def __init__(self, bind_host: str, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server((bind_host, 0))
        self.server.settimeout(0.5)
        self.port = self.server.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopped.set()
        self.server.close()


@pytest.fixture(scope="session")
def pod_env(kind_cluster: KindCluster, services) -> Iterator[dict[str, str]]:
    """Emulator endpoints as the worker pods see them (through the kind network gateway)."""
    forwarders = []
    env = dict(services.env())
    for key in ("STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST"):
        url = urlsplit(env[key])
        fwd = _Forwarder(kind_cluster.gateway, (url.hostname, url.port))
        forwarders.append(fwd)
        env[key] = f"{url.scheme}://{kind_cluster.gateway}:{fwd.port}"
    try:
        yield env
    finally:
        for fwd in forwarders:
            fwd.close()


@pytest.fixture
def core_api(kind_cluster: KindCluster):
    import kubernetes

    api_client = kubernetes.config.new_client_from_config(str(kind_cluster.kubeconfig), context=kind_cluster.context)
    return kubernetes.client.CoreV1Api(api_client)


def wait_no_worker_pods(core_api, timeout: float = 60) -> list[str]:
    """Names of worker pods still present after waiting up to ``timeout`` for deletions to finish."""
    deadline = time.monotonic() + timeout
    while True:
        pods = [p.metadata.name for p in core_api.list_namespaced_pod(
            NAMESPACE, label_selector="gcs-import.worker=1").items]
        if not pods or time.monotonic() > deadline:
            return pods
        time.sleep(1)
