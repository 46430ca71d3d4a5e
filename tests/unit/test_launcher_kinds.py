"""WorkerLauncher's docker and k8s kinds where no engine or cluster is needed: settings, log-line
joining, and failures that must name their cause (run for real against endpoints that are absent)."""

import contextlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import ClassVar

import dagster as dg
import pytest

from orchestrator.launchers import (
    LAUNCH_ID_LABEL,
    WORKER_LABEL,
    DockerLaunch,
    K8sLaunch,
    PipesGCSChannel,
    WorkerLauncher,
)
from orchestrator.launchers.docker_launcher import join_log_lines
from orchestrator.launchers.k8s_launcher import delete_worker_pods


def test_docker_container_settings():
    launcher = WorkerLauncher(
        kind="docker",
        docker=DockerLaunch(image="img:1", network="host", volumes=["/data:/data:ro"], labels={"team": "data"}),
    )
    kwargs = launcher.docker_container_kwargs("abc")
    assert kwargs["labels"] == {"team": "data", WORKER_LABEL: "1", LAUNCH_ID_LABEL: "abc"}
    assert kwargs["network_mode"] == "host"
    assert kwargs["volumes"] == ["/data:/data:ro"]
    assert kwargs["read_only"] is True and "/tmp" in kwargs["tmpfs"]
    assert "user" not in kwargs  # the image's non-root user
    assert "entrypoint" not in kwargs  # the image's python -m worker


def test_docker_named_network_and_writable_root():
    kwargs = WorkerLauncher(kind="docker", docker=DockerLaunch(network="etl", read_only_root=False)).docker_container_kwargs("x")
    assert kwargs["network"] == "etl" and "network_mode" not in kwargs
    assert "read_only" not in kwargs


def test_default_kind_is_subprocess():
    launcher = WorkerLauncher(kind="subprocess")
    assert launcher.kind == "subprocess" and WorkerLauncher().kind == "subprocess"


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b'{"a": 1}\n', b'{"b": 2}\n'], ['{"a": 1}', '{"b": 2}']),
        ([b'{"a": ', b"1", b"}\n"], ['{"a": 1}']),  # one line in three log entries (16 KiB splits)
        ([b"x\ny", b"z\n", b"tail"], ["x", "yz", "tail"]),
        (["caf\u00e9\n"], ["caf\u00e9"]),
        ([b"caf\xc3", b"\xa9\n"], ["caf\u00e9"]),  # a UTF-8 sequence cut between entries
        ([], []),
    ],
)
def testjoin_log_lines(chunks, lines):
    assert list(join_log_lines(iter(chunks))) == lines


def test_join_lines_reassembles_a_large_pipes_message():
    message = json.dumps({"__dagster_pipes_version": "0.1", "method": "report_asset_materialization",
                          "params": {"metadata": {"blob": {"raw_value": "x" * 100_000, "type": "text"}}}})
    entries = [message[i:i + 16384].encode() for i in range(0, len(message), 16384)]
    entries[-1] += b"\n"
    [line] = list(join_log_lines(iter(entries)))
    assert json.loads(line)["params"]["metadata"]["blob"]["raw_value"] == "x" * 100_000


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dg.asset
def _docker_asset(context: dg.AssetExecutionContext, launcher: WorkerLauncher):
    return launcher.launch(context=context, extras={"spec": {}, "action": "import"})


def test_docker_without_engine_fails_with_how_to_start_one(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = dg.materialize([_docker_asset], resources={"launcher": WorkerLauncher(kind="docker")},
                            raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "No Docker engine reachable" in message and "scripts/docker-up.sh" in message, message


def test_k8s_without_cluster_fails_with_the_reason(tmp_path):
    port = _closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "gcs-import"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    launcher = WorkerLauncher(kind="k8s", message_channel="logs",
                              k8s=K8sLaunch(kubeconfig_file=str(kubeconfig), poll_interval_seconds=0.1))
    result = dg.materialize([_docker_asset], resources={"launcher": launcher}, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "The import worker (k8s) failed" in message
    assert str(port) in message or "Connection refused" in message, message


@contextlib.contextmanager
def _kubernetes_api(host: str) -> Iterator[None]:
    import kubernetes

    saved = kubernetes.client.Configuration.get_default_copy()
    configuration = kubernetes.client.Configuration()
    configuration.host = host
    configuration.retries = 0
    kubernetes.client.Configuration.set_default(configuration)
    try:
        yield
    finally:
        kubernetes.client.Configuration.set_default(saved)


def _warnings(stderr: str) -> list[str]:
    """The messages of the WARNING lines Dagster's log manager wrote for the context: its handler writes
    ``<time> - dagster - WARNING - <run id or "system"> - <message>`` to stderr."""
    return [line.split(" - WARNING - ", 1)[1].split(" - ", 1)[1] for line in stderr.splitlines() if " - WARNING - " in line]


def test_pod_cleanup_against_an_unreachable_api_warns_and_returns(capsys):
    """Cleanup against an unreachable API only warns (the run's own error must stand): the pods cannot
    be listed, so no pod can be named; the warning names the namespace and the refused connection."""
    port = _closed_port()
    with _kubernetes_api(f"http://127.0.0.1:{port}"):
        delete_worker_pods("gcs-import", "nope", dg.build_asset_context())  # no exception
    [warning] = _warnings(capsys.readouterr().err)
    assert "Could not list worker pods in gcs-import to delete them" in warning, warning
    assert "Connection refused" in warning and str(port) in warning, warning


class _PodsAPI(http.server.BaseHTTPRequestHandler):
    """Lists three pods; deleting them answers 404 (already gone), 403, and a dropped connection."""

    requests: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self):
        self.requests.append(("GET", self.path))
        items = [{"metadata": {"name": name}} for name in ("worker-gone", "worker-forbidden", "worker-dropped")]
        self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def do_DELETE(self):
        self.requests.append(("DELETE", self.path))
        name = self.path.rsplit("/", 1)[1]
        if name == "worker-gone":
            self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})
        elif name == "worker-forbidden":
            self._reply(403, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403})
        else:
            self.close_connection = True  # no response at all

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_pod_cleanup_warns_naming_each_pod_it_could_not_delete(capsys):
    """Each pod is tried, a failed delete only warns (naming the pod and the cause), an already
    deleted pod (404) is not worth a warning, and nothing is raised."""
    _PodsAPI.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PodsAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with _kubernetes_api(f"http://127.0.0.1:{server.server_address[1]}"):
            delete_worker_pods("gcs-import", "abc123", dg.build_asset_context())  # no exception
    finally:
        server.shutdown()
        server.server_close()
    [listing, *deletes] = _PodsAPI.requests
    assert listing[0] == "GET" and listing[1].startswith("/api/v1/namespaces/gcs-import/pods?")
    assert f"labelSelector={LAUNCH_ID_LABEL}%3Dabc123" in listing[1], listing
    assert [path.rsplit("/", 1)[1] for _, path in deletes] == ["worker-gone", "worker-forbidden", "worker-dropped"]
    forbidden, dropped = _warnings(capsys.readouterr().err)
    assert forbidden == "Could not delete worker pod worker-forbidden: 403 Forbidden", forbidden
    assert dropped.startswith("Could not delete worker pod worker-dropped: "), dropped
    assert "Remote end closed connection without response" in dropped, dropped


def test_worker_error_from_a_quoted_pod_log_tail(tmp_path):
    """dagster_k8s quotes the log tail of a pod that failed before it was seen running; the worker's
    Pipes "closed" message in it is what the step should show. The tail is made by a real Pipes program."""
    import subprocess
    import sys

    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR, encode_env_var

    from orchestrator.launchers.failures import worker_error_from_pipes_text

    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps({"asset_keys": ["a"], "run_id": "r", "job_name": "j", "extras": {},
                                        "code_version_by_asset_key": None, "provenance_by_asset_key": None,
                                        "partition_key": None, "partition_key_range": None,
                                        "partition_time_window": None, "retry_number": 0}))
    script = ("from dagster_pipes import open_dagster_pipes\n"
              "with open_dagster_pipes() as pipes:\n"
              "    pipes.log.info('starting')\n"
              "    raise RuntimeError(\"GCS bucket 'gone' was not found\")\n")
    env = {DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_env_var({"path": str(context_file)}),
           DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_env_var({"stdio": "stderr"}), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and '"closed"' in proc.stderr
    quoted = f'Pod p terminated: Container "worker" failed with message: "None". Last 100 log lines: "{proc.stderr}"'
    assert worker_error_from_pipes_text(quoted) == "RuntimeError: GCS bucket 'gone' was not found"
    assert worker_error_from_pipes_text("Pod p failed: ImagePullBackOff") is None


def test_credentials_path_is_forwarded_to_a_subprocess_only(monkeypatch):
    """Issue 9.6: in a container or pod the code server's key-file path does not exist, and google-auth then
    raises instead of using the metadata server (Workload Identity). Only an explicit env entry (a mounted
    file's path) reaches a container."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/key.json")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    assert WorkerLauncher(kind="subprocess").worker_env()["GOOGLE_APPLICATION_CREDENTIALS"] == "/home/me/key.json"
    for kind in ("docker", "k8s"):
        env = WorkerLauncher(kind=kind).worker_env()
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in env and env["GOOGLE_CLOUD_PROJECT"] == "p"
        mounted = WorkerLauncher(kind=kind, env={"GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/google/key.json"})
        assert mounted.worker_env()["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/google/key.json"
    pod = WorkerLauncher(kind="k8s").k8s_pod_body(pod_name="p", env={})
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e.name for e in pod.spec.containers[0].env or []}


def test_k8s_defaults_to_the_gcs_channel_and_names_the_missing_prefix():
    with pytest.raises(dg.Failure, match="pipes_gcs") as info:
        WorkerLauncher(kind="k8s").validate()
    assert "message_channel: logs" in info.value.description
    assert WorkerLauncher(kind="k8s", pipes_gcs=PipesGCSChannel(bucket="b")).effective_channel() == "gcs"
    assert WorkerLauncher(kind="k8s", message_channel="logs").effective_channel() == "logs"
    assert WorkerLauncher(kind="subprocess").effective_channel() == "logs"
    with pytest.raises(dg.Failure, match="pipes_gcs"):
        WorkerLauncher(kind="docker", message_channel="gcs").validate()


@pytest.mark.parametrize("prefix", ["", "/", "a//b", "a/../b"])
def test_pipes_gcs_prefix_must_be_an_object_prefix(prefix):
    with pytest.raises(dg.Failure, match=r"pipes_gcs\.prefix"):
        WorkerLauncher(kind="subprocess", message_channel="gcs", pipes_gcs=PipesGCSChannel(bucket="b", prefix=prefix)).validate()


def test_kinds_come_from_the_registry(monkeypatch):
    """The resource's ``kind`` field and launcher_from_env accept exactly the registry's kinds."""
    import typing

    from orchestrator.launchers.from_env import LAUNCHER_ENV, LauncherConfigError, launcher_from_env
    from orchestrator.launchers.kinds import KIND_NAMES, LAUNCHER_KINDS

    assert KIND_NAMES == ("subprocess", "docker", "k8s")
    assert typing.get_args(WorkerLauncher.model_fields["kind"].annotation) == KIND_NAMES
    assert {name: entry.default_channel for name, entry in LAUNCHER_KINDS.items()} == {
        "subprocess": "logs", "docker": "logs", "k8s": "gcs"}
    with pytest.raises(LauncherConfigError, match="use one of subprocess, docker, k8s"):
        launcher_from_env({LAUNCHER_ENV: "nomad"})


#: A stand-in for ``python -m worker`` (run as the launcher's python_executable): fails under Pipes with
#: an error of class NAME, after reporting REPORT (a Python literal; None: no report, like an older worker).
FAKE_WORKER = """#!{python}
from dagster_pipes import open_dagster_pipes
from worker.core import contract as c

class {name}(Exception):
    pass

with open_dagster_pipes() as pipes:
    if {report!r} is not None:
        pipes.report_custom_message({{c.REPORT_FAILURE: {report!r}}})
    raise {name}("BigQuery refused a concurrent update of the table")
"""


def _fake_worker(tmp_path, *, name: str, report: dict | None) -> str:
    import sys

    path = tmp_path / "fake-worker"
    path.write_text(FAKE_WORKER.format(python=sys.executable, name=name, report=report))
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("name", "report", "retried"),
    [
        # the worker's report decides, whatever the class name says
        ("ConcurrentUpdate", {"transient": True, "error": "ConcurrentUpdate", "message": "m"}, True),
        ("ServiceUnreachable", {"transient": False, "error": "ServiceUnreachable", "message": "m"}, False),
        # no report (a worker image older than the code location): today's class-name form
        ("ServiceUnreachable", None, True),
        ("ConcurrentUpdate", None, False),
    ],
    ids=["reported transient", "reported permanent", "old worker transient name", "old worker other name"],
)
def test_transient_failure_is_retried_as_the_worker_reports(tmp_path, monkeypatch, name, report, retried):
    """A real Pipes launch (subprocess kind) of a worker that fails: retried (dg.RetryRequested) when its
    failure report says transient; without a report, when its class name is in TRANSIENT_ERRORS."""
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    launcher = WorkerLauncher(python_executable=_fake_worker(tmp_path, name=name, report=report),
                              transient_retries=1, transient_retry_seconds=0)
    result = dg.materialize([_docker_asset], resources={"launcher": launcher}, raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == (1 if retried else 0)
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert f"The import worker (subprocess) failed: {name}: BigQuery refused a concurrent update" in message, message


def test_failure_report_in_a_quoted_pod_log_tail(tmp_path):
    """A pod that failed before its log stream was read: its failure report is read from the quoted tail."""
    import os
    import subprocess
    import sys

    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR, encode_env_var

    from orchestrator.launchers.failures import WorkerFailure, recover_worker_failure

    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps({"asset_keys": ["a"], "run_id": "r", "job_name": "j", "extras": {},
                                        "code_version_by_asset_key": None, "provenance_by_asset_key": None,
                                        "partition_key": None, "partition_key_range": None,
                                        "partition_time_window": None, "retry_number": 0}))
    env = {DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_env_var({"path": str(context_file)}),
           DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_env_var({"stdio": "stderr"}), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.getcwd()}
    tails = {}
    for report in ({"transient": True, "error": "Busy", "message": "m"}, None):
        script = _fake_worker(tmp_path, name="Busy", report=report)
        proc = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and '"closed"' in proc.stderr
        tails[report is not None] = f'Pod p failed. Last 100 log lines: "{proc.stderr}"'
    message = "Busy: BigQuery refused a concurrent update of the table"
    assert recover_worker_failure(context=None, custom_messages=(), quoted_text=tails[True]) == WorkerFailure(
        message=message, transient=True, reported=True)
    assert recover_worker_failure(context=None, custom_messages=(), quoted_text=tails[False]) == WorkerFailure(
        message=message, transient=False, reported=False)
    assert recover_worker_failure(context=None, custom_messages=(), quoted_text="Pod p failed: ImagePullBackOff") is None
