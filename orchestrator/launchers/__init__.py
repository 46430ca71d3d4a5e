"""Where the worker runs: the ``launcher`` resource and one module per kind.

- :mod:`~orchestrator.launchers.resource`: ``WorkerLauncher`` (the resource; failure semantics)
- :mod:`~orchestrator.launchers.kinds`: the registry, one entry per kind (settings, default channel,
  withheld environment, logs reader, run function)
- :mod:`~orchestrator.launchers.settings`: ``DockerLaunch``, ``K8sLaunch`` and shared names
- :mod:`~orchestrator.launchers.subprocess_launcher`, :mod:`~orchestrator.launchers.docker_launcher`,
  :mod:`~orchestrator.launchers.k8s_launcher`: one per kind
- :mod:`~orchestrator.launchers.pipes_gcs`: the Pipes channel over a GCS prefix
- :mod:`~orchestrator.launchers.failures`: why the worker failed, recovered (its failure report, its
  message; and the private Dagster imports, in one place)
"""

from orchestrator.launchers.kinds import KIND_NAMES, LAUNCHER_KINDS, LauncherKindEntry
from orchestrator.launchers.pipes_gcs import PipesGCSChannel
from orchestrator.launchers.resource import WorkerLauncher
from orchestrator.launchers.settings import (
    DEFAULT_WORKER_IMAGE,
    DOCKER_LAUNCH_ENV,
    K8S_LAUNCH_ENV,
    LAUNCH_ID_LABEL,
    WORKER_LABEL,
    WORKER_UID,
    DockerLaunch,
    K8sLaunch,
    K8sResources,
    K8sToleration,
    WorkerLaunchError,
)

__all__ = [
    "DEFAULT_WORKER_IMAGE",
    "DOCKER_LAUNCH_ENV",
    "K8S_LAUNCH_ENV",
    "KIND_NAMES",
    "LAUNCHER_KINDS",
    "LAUNCH_ID_LABEL",
    "WORKER_LABEL",
    "WORKER_UID",
    "DockerLaunch",
    "K8sLaunch",
    "K8sResources",
    "K8sToleration",
    "LauncherKindEntry",
    "PipesGCSChannel",
    "WorkerLaunchError",
    "WorkerLauncher",
]
