"""Launcher settings: the configuration classes of each kind and the names every kind shares.

Pure configuration, no I/O: :class:`DockerLaunch` and :class:`K8sLaunch` are nested in the
``launcher`` resource (:class:`orchestrator.launchers.resource.WorkerLauncher`); the GCS message
channel's settings (``PipesGCSChannel``) are in :mod:`orchestrator.launchers.pipes_gcs`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import dagster as dg

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


def with_env_defaults(value: Any, cls: type, env_name: str) -> Any:
    """``value`` with the fields it leaves unset taken from the JSON object in ``$env_name``.

    Raises:
        WorkerLaunchError: the variable is set but is not a JSON object of ``cls`` fields.
    """
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
