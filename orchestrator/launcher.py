"""Where the worker runs: one Dagster resource chooses subprocess, Docker or Kubernetes.

Every kind runs the same worker program (``python -m worker``) with the same Pipes
protocol, through Dagster's own clients: ``PipesSubprocessClient``,
``PipesDockerClient`` and ``PipesK8sClient``. The factory only calls
:meth:`WorkerLauncher.launch`.

Failure semantics, the same for every kind:
- the worker raised: the step fails with the worker's own error message (read
  back from the Pipes ``closed`` event), not only "exited with code 1";
- the worker exited 0 without reporting a materialization: the step fails;
- the launch itself failed (interpreter, image or pod missing, Docker engine or
  cluster unreachable, pod timed out): the step fails with that reason;
- cleanup (removing the container, deleting the pod) never replaces the real error:
  a container or pod already gone is fine, any other cleanup error is logged as a
  warning and the original outcome stands.

Kind-specific behaviour:
- ``docker``: the engine is the one ``DOCKER_HOST`` names (``docker.from_env()``).
  The image must already be on that engine unless ``docker.pull`` is set: a missing
  image fails at once with its name and the build command (no registry pull is tried).
  Every container carries the label ``gcs-import.worker=1`` and a per-launch
  ``gcs-import.launch-id`` and is removed after the run, success or failure
  (``PipesDockerClient`` itself only stops it). Pipes messages are read from the
  container log stream; lines the engine split into 16 KiB pieces are joined again
  before parsing, so large metadata survives.
- ``k8s``: one pod per run, ``restartPolicy: Never``, non-root security context, the
  pod labelled like the container above. The pod is deleted after the run, except a
  failed pod when ``k8s.keep_failed_pod`` is set (for ``kubectl logs``/``describe``).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError
from dagster._core.events import DagsterEventType
from dagster._core.pipes.utils import extract_message_or_forward_to_stdout
from dagster_docker.pipes import PipesDockerLogsMessageReader
from dagster_pipes import DagsterPipesError

#: Variables copied from the orchestrator's environment into the worker's, when set.
DEFAULT_FORWARDED_ENV = (
    "STORAGE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
)

#: Forwarded names that point at the code server's filesystem: never forwarded into containers or pods.
CONTAINER_UNSAFE_ENV = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})

WORKER_COMMAND = ("python", "-m", "worker")

#: The worker image scripts/docker-up.sh builds.
DEFAULT_WORKER_IMAGE = "gcs-interval-import-worker:dev"
#: Label on every worker container and pod (``docker ps -a --filter label=gcs-import.worker=1``).
WORKER_LABEL = "gcs-import.worker"
#: Label whose value is unique per launch: how cleanup finds exactly this run's container or pod.
LAUNCH_ID_LABEL = "gcs-import.launch-id"
#: The uid/gid of the ``app`` user in the worker image (see Dockerfile).
WORKER_UID = 10001

#: JSON objects of DockerLaunch / K8sLaunch fields: defaults for fields the resource config leaves unset
#: (how a deployment configures the launcher without code, e.g. the Helm values in k8s/helm/).
DOCKER_LAUNCH_ENV = "GCS_IMPORT_DOCKER_LAUNCH"
K8S_LAUNCH_ENV = "GCS_IMPORT_K8S_LAUNCH"

BUILD_HINT = "build it with `bash scripts/docker-up.sh` (or `docker build --target worker -t IMAGE .`)"


class WorkerLaunchError(dg.Failure):
    """The worker could not be started, failed, or finished without reporting."""


# -- configuration ----------------------------------------------------------------


class DockerLaunch(dg.Config):
    """How ``kind="docker"`` runs the worker container."""

    image: str = DEFAULT_WORKER_IMAGE
    #: Docker network mode or network name. ``host`` lets the container reach emulators on 127.0.0.1.
    network: str | None = "host"
    #: Bind mounts in ``docker run -v`` form: ``/host/path:/container/path[:ro]``.
    volumes: list[str] = []
    #: Extra container labels (the launcher's own labels are always added).
    labels: dict[str, str] = {}
    #: Pull the image when it is not on the engine (needs a reachable registry). Off: fail with a build hint.
    pull: bool = False
    #: Read-only root filesystem with a tmpfs at /tmp (the worker writes nothing else).
    read_only_root: bool = True
    #: ``user`` for the container; ``None`` keeps the image's non-root user.
    user: str | None = None
    #: Override the image's entrypoint (debugging only; the image's is ``python -m worker``).
    entrypoint: list[str] | None = None
    #: Remove the container after the run (on success and on failure).
    remove: bool = True


class K8sResources(dg.Config):
    """Container resources, Kubernetes quantities (``{"cpu": "500m", "memory": "1Gi"}``)."""

    requests: dict[str, str] = {"cpu": "250m", "memory": "512Mi"}
    limits: dict[str, str] = {"memory": "2Gi"}


class K8sToleration(dg.Config):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    #: NoSchedule, PreferNoSchedule or NoExecute; None: all effects.
    effect: str | None = None
    toleration_seconds: int | None = None


class K8sLaunch(dg.Config):
    """How ``kind="k8s"`` runs the worker pod."""

    #: Namespace of the pod (k8s/ uses ``gcs-import-workers``, apart from Dagster's own pods);
    #: ``None``: the code server's own namespace in-cluster, else the kubeconfig's, else default.
    namespace: str | None = None
    image: str = DEFAULT_WORKER_IMAGE
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    #: The worker's service account (Workload Identity: bound to a Google service account, no key files).
    service_account_name: str | None = "gcs-import-worker"
    resources: K8sResources = K8sResources()
    node_selector: dict[str, str] = {}
    tolerations: list[K8sToleration] = []
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    #: Seconds to wait for the pod to finish before failing the step (0: no limit).
    pod_wait_timeout_seconds: float = 4 * 3600
    #: ``activeDeadlineSeconds``: Kubernetes kills the pod after this long (``None``: no limit).
    active_deadline_seconds: int | None = 6 * 3600
    #: Leave a failed pod in place for ``kubectl logs``/``describe`` (a successful pod is always deleted).
    keep_failed_pod: bool = False
    #: ``None``: in-cluster when KUBERNETES_SERVICE_HOST is set, else the kubeconfig.
    load_incluster_config: bool | None = None
    kubeconfig_file: str | None = None
    kube_context: str | None = None
    #: Seconds between pod status polls.
    poll_interval_seconds: float = 2.0
    #: Override the image's entrypoint (debugging only; the image's is ``python -m worker``).
    command: list[str] | None = None


class WorkerLauncher(dg.ConfigurableResource):
    """Launches the import worker and returns what it reported through Pipes.

    ``kind`` picks the Pipes client: ``subprocess`` (default; local development),
    ``docker`` (the worker image on a laptop or CI) or ``k8s`` (a pod per run).
    """

    kind: Literal["subprocess", "docker", "k8s"] = "subprocess"
    #: Extra environment for the worker.
    env: dict[str, str] = {}
    #: Names copied from this process's environment into the worker's when set.
    forward_env: list[str] = list(DEFAULT_FORWARDED_ENV)
    #: subprocess: the interpreter that runs ``-m worker`` (default: this one).
    python_executable: str | None = None
    docker: DockerLaunch = DockerLaunch()
    k8s: K8sLaunch = K8sLaunch()
    #: Retries of a step whose worker failed transiently (a service unreachable past the worker's own
    #: retry deadline, BigQuery's concurrent-DML refusals): the step is retried with ``dg.RetryRequested``.
    transient_retries: int = 3
    #: Seconds before such a retry (doubled each time).
    transient_retry_seconds: float = 60.0
    #: Seconds the worker retries an unreachable or failing (429/5xx) GCS or BigQuery call before it
    #: gives up (default: the worker's own, 120).
    retry_deadline_seconds: float | None = None

    def effective_docker(self) -> DockerLaunch:
        """``docker`` with the unset fields taken from ``$GCS_IMPORT_DOCKER_LAUNCH`` (JSON), if set."""
        return _with_env_defaults(self.docker, DockerLaunch, DOCKER_LAUNCH_ENV)

    def effective_k8s(self) -> K8sLaunch:
        """``k8s`` with the unset fields taken from ``$GCS_IMPORT_K8S_LAUNCH`` (JSON), if set."""
        return _with_env_defaults(self.k8s, K8sLaunch, K8S_LAUNCH_ENV)

    def worker_env(self) -> dict[str, str]:
        """The environment the worker gets (forwarded names first, then ``env``).

        ``GOOGLE_APPLICATION_CREDENTIALS`` is forwarded to a subprocess only: in a container or pod
        the code server's path does not exist, and google-auth then raises instead of falling back to
        the metadata server (Workload Identity). To use a key file in a container, mount it and set
        the variable to the mounted path in ``env`` (docs/containers.md).
        """
        names = [n for n in self.forward_env if self.kind == "subprocess" or n not in CONTAINER_UNSAFE_ENV]
        forwarded = {name: os.environ[name] for name in names if os.environ.get(name)}
        return {**forwarded, **self.env}

    def launch(
        self, *, context: dg.AssetExecutionContext | dg.OpExecutionContext, extras: Mapping[str, Any]
    ) -> Sequence[Any]:
        """Run the worker with ``extras`` and return its reported results (materializations, checks).

        Raises:
            WorkerLaunchError: with the worker's own message when it failed, or when it reported nothing.
        """
        extras = dict(extras)
        if self.retry_deadline_seconds is not None:
            from worker.contract import EXTRA_RETRY_DEADLINE

            extras.setdefault(EXTRA_RETRY_DEADLINE, self.retry_deadline_seconds)
        try:
            invocation = self._run(context=context, extras=extras)
        except WorkerLaunchError:
            raise
        except (DagsterPipesExecutionError, DagsterPipesError) as exc:
            worker_error = _worker_error_from_event_log(context)
            failure = WorkerLaunchError(
                description=f"The import worker ({self.kind}) failed: {worker_error or exc}",
                metadata={"launcher": self.kind, "exit": str(exc)},
            )
            self._retry_if_transient(context, worker_error, failure)
            raise failure from exc
        except FileNotFoundError as exc:
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) could not be started: {exc}. "
                "Check python_executable (or the image) in the WorkerLauncher resource.",
            ) from exc
        except Exception as exc:
            # Docker API errors, Kubernetes API errors, DagsterK8sError (pod failed / timed out) ...
            # A pod that fails before it is seen running fails in dagster_k8s' wait for readiness,
            # before its log stream is read: the worker's Pipes "closed" message is then only in
            # the log tail quoted by the error.
            worker_error = _worker_error_from_event_log(context) or worker_error_from_pipes_text(str(exc))
            detail = f"{type(exc).__name__}: {exc}"
            failure = WorkerLaunchError(
                description=f"The import worker ({self.kind}) failed: {worker_error or detail}",
                metadata={"launcher": self.kind, "exit": detail[:2000]},
            )
            self._retry_if_transient(context, worker_error, failure)
            raise failure from exc
        results = invocation.get_results(implicit_materializations=False)
        if not any(isinstance(result, dg.MaterializeResult) for result in results) and self._expects_materialization(
            extras
        ):
            raise WorkerLaunchError(
                description=f"The import worker ({self.kind}) exited without reporting a materialization; "
                "the step is failed rather than recorded as a success. See the step's logs for its output.",
            )
        return results

    def _retry_if_transient(self, context: Any, worker_error: str | None, failure: WorkerLaunchError) -> None:
        """Raise ``dg.RetryRequested`` when the worker's error is transient and retries are left."""
        from worker.contract import TRANSIENT_ERRORS

        if not worker_error or worker_error.split(":", 1)[0].split(".")[-1] not in TRANSIENT_ERRORS:
            return
        attempt = getattr(context, "retry_number", 0)
        if attempt >= self.transient_retries:
            return
        wait = self.transient_retry_seconds * (2**attempt)
        context.log.warning(f"The import worker failed transiently (retry {attempt + 1} of {self.transient_retries} "
                            f"in {wait:.0f}s): {worker_error}")
        raise dg.RetryRequested(max_retries=self.transient_retries, seconds_to_wait=wait) from failure

    # -- kinds --------------------------------------------------------------

    def _run(self, *, context: Any, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        if self.kind == "subprocess":
            client = dg.PipesSubprocessClient(env=self.worker_env())
            command = [self.python_executable or sys.executable, *WORKER_COMMAND[1:]]
            return client.run(context=context, extras=extras, command=command)
        if self.kind == "docker":
            return self._run_docker(context=context, extras=extras)
        if self.kind == "k8s":
            return self._run_k8s(context=context, extras=extras)
        raise WorkerLaunchError(description=f"Unknown WorkerLauncher kind {self.kind!r}")

    @staticmethod
    def _expects_materialization(extras: Mapping[str, Any]) -> bool:
        from worker.contract import EXTRA_ACTION, Action

        return extras.get(EXTRA_ACTION, Action.IMPORT.value) == Action.IMPORT.value

    # -- docker ---------------------------------------------------------------

    def docker_container_kwargs(self, launch_id: str) -> dict[str, Any]:
        """Arguments for ``docker.containers.create`` besides image, command and environment."""
        cfg = self.effective_docker()
        kwargs: dict[str, Any] = {
            "labels": {**cfg.labels, WORKER_LABEL: "1", LAUNCH_ID_LABEL: launch_id},
            "name": f"gcs-import-worker-{launch_id}",
        }
        if cfg.network:
            kwargs["network_mode" if cfg.network in ("host", "none", "bridge") else "network"] = cfg.network
        if cfg.volumes:
            kwargs["volumes"] = list(cfg.volumes)
        if cfg.read_only_root:
            kwargs["read_only"] = True
            kwargs["tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=512m"}
        if cfg.user:
            kwargs["user"] = cfg.user
        if cfg.entrypoint:
            kwargs["entrypoint"] = list(cfg.entrypoint)
        return kwargs

    def _run_docker(self, *, context: Any, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        import docker
        import docker.errors
        from dagster_docker import PipesDockerClient

        cfg = self.effective_docker()
        try:
            engine = docker.from_env()
            engine.ping()
        except docker.errors.DockerException as exc:
            raise WorkerLaunchError(
                description=f"No Docker engine reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', '<unset>')}): "
                f"{exc}. Start one with `bash scripts/docker-up.sh` and export the DOCKER_HOST it prints."
            ) from exc
        try:
            try:
                engine.images.get(cfg.image)
            except docker.errors.ImageNotFound as exc:
                if not cfg.pull:
                    raise WorkerLaunchError(
                        description=f"Docker image {cfg.image!r} is not on the engine at "
                        f"DOCKER_HOST={os.environ.get('DOCKER_HOST', '<unset>')}; {BUILD_HINT.replace('IMAGE', cfg.image)}. "
                        "Set docker.pull=true to pull it from a registry instead.",
                    ) from exc
            launch_id = uuid.uuid4().hex[:12]
            client = PipesDockerClient(env=self.worker_env(), message_reader=LineJoiningDockerLogsMessageReader())
            try:
                return client.run(
                    context=context,
                    image=cfg.image,
                    extras=extras,
                    container_kwargs=self.docker_container_kwargs(launch_id),
                )
            finally:
                if cfg.remove:
                    _remove_containers(engine, launch_id, context)
        finally:
            engine.close()

    # -- k8s --------------------------------------------------------------------

    def k8s_base_pod_meta(self, launch_id: str) -> dict[str, Any]:
        cfg = self.effective_k8s()
        return {
            "labels": {**cfg.labels, WORKER_LABEL: "1", LAUNCH_ID_LABEL: launch_id},
            "annotations": dict(cfg.annotations),
        }

    def k8s_base_pod_spec(self) -> dict[str, Any]:
        """The pod spec (snake_case, as ``dagster_k8s`` takes it) around the worker container."""
        cfg = self.effective_k8s()
        container: dict[str, Any] = {
            "name": "worker",
            "image": cfg.image,
            "image_pull_policy": cfg.image_pull_policy,
            "resources": {"requests": dict(cfg.resources.requests), "limits": dict(cfg.resources.limits)},
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": WORKER_UID,
                "run_as_group": WORKER_UID,
                "allow_privilege_escalation": False,
                "read_only_root_filesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],
        }
        if cfg.command:
            container["command"] = list(cfg.command)
        spec: dict[str, Any] = {
            "restart_policy": "Never",
            # The worker never calls the Kubernetes API: no service-account token in the pod.
            "automount_service_account_token": False,
            "containers": [container],
            "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "512Mi"}}],
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": WORKER_UID,
                "run_as_group": WORKER_UID,
                "fs_group": WORKER_UID,
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
        }
        if cfg.service_account_name:
            spec["service_account_name"] = cfg.service_account_name
        if cfg.node_selector:
            spec["node_selector"] = dict(cfg.node_selector)
        if cfg.tolerations:
            spec["tolerations"] = [
                {k: v for k, v in tol.model_dump().items() if v is not None} for tol in cfg.tolerations
            ]
        if cfg.active_deadline_seconds:
            spec["active_deadline_seconds"] = cfg.active_deadline_seconds
        return spec

    def k8s_pod_body(self, *, pod_name: str, env: Mapping[str, str], launch_id: str = "preview") -> Any:
        """The ``V1Pod`` dagster_k8s would create for this configuration (used by tests and for review)."""
        from dagster_k8s.pipes import build_pod_body

        return build_pod_body(
            pod_name=pod_name,
            image=None,
            command=None,
            env_vars={**self.worker_env(), **env},
            base_pod_meta=self.k8s_base_pod_meta(launch_id),
            base_pod_spec=self.k8s_base_pod_spec(),
        )

    def _k8s_client(self) -> Any:
        from dagster_k8s import PipesK8sClient

        cfg = self.effective_k8s()
        return PipesK8sClient(
            env=self.worker_env(),
            load_incluster_config=cfg.load_incluster_config,
            kubeconfig_file=cfg.kubeconfig_file,
            kube_context=cfg.kube_context,
            poll_interval=cfg.poll_interval_seconds,
        )

    def _run_k8s(self, *, context: Any, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        from dagster_k8s.utils import detect_current_namespace

        cfg = self.effective_k8s()
        client = self._k8s_client()
        launch_id = uuid.uuid4().hex[:12]
        failed = True
        try:
            invocation = client.run(
                context=context,
                extras=extras,
                namespace=cfg.namespace,
                base_pod_meta=self.k8s_base_pod_meta(launch_id),
                base_pod_spec=self.k8s_base_pod_spec(),
                pod_wait_timeout=cfg.pod_wait_timeout_seconds,
                # Deleted below instead: PipesK8sClient's own delete would raise on a pod already
                # gone (404) and hide the real error, and it cannot keep failed pods.
                delete_pod_on_completion=False,
            )
            failed = False
            return invocation
        finally:
            if failed and cfg.keep_failed_pod:
                context.log.warning(
                    f"Keeping the failed worker pod (label {LAUNCH_ID_LABEL}={launch_id}) for debugging: "
                    f"kubectl logs -l {LAUNCH_ID_LABEL}={launch_id}; delete it when done."
                )
            else:
                namespace = cfg.namespace or detect_current_namespace(cfg.kubeconfig_file) or "default"
                _delete_pods(namespace, launch_id, context)


class LineJoiningDockerLogsMessageReader(PipesDockerLogsMessageReader):
    """``PipesDockerLogsMessageReader`` that parses whole lines.

    The Docker engine splits a log line longer than 16 KiB into several log entries, and the
    log stream yields entries, not lines; the stock reader parses each entry on its own, so a
    large Pipes message (big metadata) would be lost as unparseable text. This reader joins
    entries and hands complete lines to Dagster.
    """

    def consume_docker_logs(self, container) -> None:
        handler = self._handler
        if handler is None:
            raise RuntimeError("Can only consume logs within the message reader's context.")
        for line in _join_lines(container.logs(stdout=True, stderr=True, stream=True, follow=True)):
            extract_message_or_forward_to_stdout(handler, line)


def _with_env_defaults(value: Any, cls: type, env_name: str) -> Any:
    import json

    raw = os.environ.get(env_name, "").strip()
    if not raw:
        return value
    try:
        defaults = json.loads(raw)
        if not isinstance(defaults, dict):
            raise ValueError("not a JSON object")
        return cls(**{**defaults, **value.model_dump(exclude_unset=True)})
    except (ValueError, TypeError) as exc:
        raise WorkerLaunchError(description=f"${env_name} is not a valid {cls.__name__} JSON object: {exc}") from exc


def _join_lines(chunks: Iterator[bytes | str]) -> Iterator[str]:
    """Complete lines (without the newline) from a stream of arbitrarily cut chunks."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        *lines, pending = pending.split("\n")
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _remove_containers(engine: Any, launch_id: str, context: Any) -> None:
    """Remove this launch's container(s); never raise (the run's own outcome must stand)."""
    import docker.errors

    try:
        containers = engine.containers.list(all=True, filters={"label": f"{LAUNCH_ID_LABEL}={launch_id}"})
    except docker.errors.DockerException as exc:
        context.log.warning(f"Could not list worker containers to remove them: {exc}")
        return
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            context.log.warning(f"Could not remove worker container {container.name}: {exc}")


def _delete_pods(namespace: str, launch_id: str, context: Any) -> None:
    """Delete this launch's pod(s); a pod already gone is fine; never raise."""
    import kubernetes

    try:
        core = kubernetes.client.CoreV1Api()
        pods = core.list_namespaced_pod(namespace, label_selector=f"{LAUNCH_ID_LABEL}={launch_id}").items
    except Exception as exc:
        context.log.warning(f"Could not list worker pods in {namespace} to delete them: {exc}")
        return
    for pod in pods:
        try:
            core.delete_namespaced_pod(pod.metadata.name, namespace)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status != 404:
                context.log.warning(f"Could not delete worker pod {pod.metadata.name}: {exc.status} {exc.reason}")
        except Exception as exc:
            context.log.warning(f"Could not delete worker pod {pod.metadata.name}: {exc}")


def worker_error_from_pipes_text(text: str) -> str | None:
    """The exception of the last Pipes ``closed`` message found anywhere in ``text`` (e.g. a quoted log tail)."""
    import json

    decoder = json.JSONDecoder()
    found: str | None = None
    start = text.find('{"__dagster_pipes_version"')
    while start != -1:
        try:
            message, _ = decoder.raw_decode(text, start)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("method") == "closed":
            exception = (message.get("params") or {}).get("exception")
            if isinstance(exception, dict) and exception.get("message"):
                found = _named(exception.get("name"), exception["message"])
        start = text.find('{"__dagster_pipes_version"', start + 1)
    return found


def _named(name: str | None, message: str) -> str:
    """``Name: message``, unless the message already starts with the (qualified) class name."""
    message = message.strip()
    if not name or message.split(":", 1)[0].split(".")[-1] == name:
        return message
    return f"{name}: {message}"


def _worker_error_from_event_log(context: Any) -> str | None:
    """The message of the newest '[pipes] ... closed with exception' event of this step, if any."""
    try:
        step_key = context.op_execution_context.get_step_execution_context().step.key if hasattr(
            context, "op_execution_context"
        ) else context.get_step_execution_context().step.key
        records = context.instance.all_logs(context.run_id, of_type=DagsterEventType.ENGINE_EVENT)
    except Exception:  # the error message is a courtesy; never mask the real failure
        return None
    for record in reversed(records):
        event = record.dagster_event
        if event is None or event.step_key != step_key:
            continue
        if "closed with exception" not in (record.user_message or ""):
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return _named(error.cls_name, error.message)
    return None
