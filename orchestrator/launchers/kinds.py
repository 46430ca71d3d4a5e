"""The launcher kinds: one :class:`LauncherKindEntry` per kind, in :data:`LAUNCHER_KINDS`.

``WorkerLauncher`` (the resource) and ``launcher_from_env`` look a kind up here; nothing else compares
kind names. An entry names the kind's settings (the resource field, its model and the environment
variable of JSON defaults), its default message channel, the forwarded variables a worker of this kind
must not receive, the Pipes message reader of the ``logs`` channel and how to run the worker.

Adding a kind: its module (``<kind>_launcher.py``: a run function and a logs reader that keeps the
message handler, :class:`~orchestrator.launchers.failures.RecordsHandler`), its settings model (in
:mod:`~orchestrator.launchers.settings`) and the resource field that holds it, and its entry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import dagster as dg

from orchestrator.launchers.settings import (
    CONTAINER_UNSAFE_ENV,
    DOCKER_LAUNCH_ENV,
    K8S_LAUNCH_ENV,
    DockerLaunch,
    K8sLaunch,
    WorkerLaunchError,
    with_env_defaults,
)

if TYPE_CHECKING:
    from orchestrator.launchers.failures import RecordsHandler
    from orchestrator.launchers.resource import WorkerLauncher

Channel = Literal["logs", "gcs"]


class RunWorker(Protocol):
    """How a kind runs the worker: its Pipes client's run, with the channel's injector and reader.

    Raises what the client raises (``DagsterPipesExecutionError``, ``DagsterPipesError``, the engine's or
    cluster's errors) and ``WorkerLaunchError`` for a launch it can explain (no engine, no image).
    """

    def __call__(
        self, *, launcher: WorkerLauncher, settings: Any, context: Any, extras: Mapping[str, Any],
        env: Mapping[str, str], context_injector: Any, message_reader: Any,
    ) -> dg.PipesClientCompletedInvocation: ...


@dataclass(frozen=True)
class LauncherKindEntry:
    """One launcher kind, as the resource and ``launcher_from_env`` use it."""

    name: str
    #: How the worker runs (the kind module's run function, imported when called).
    run: RunWorker
    #: A new Pipes message reader for the ``logs`` channel (the process's or container's own output).
    logs_reader: Callable[[], RecordsHandler]
    #: The ``WorkerLauncher`` field holding this kind's settings, and its model; None: no settings.
    settings_field: str | None = None
    settings_model: type[dg.Config] | None = None
    #: The variable whose JSON object gives the settings fields the resource leaves unset.
    settings_env: str | None = None
    #: What message channel ``auto`` means for this kind, and why (named when its ``pipes_gcs`` is missing).
    default_channel: Channel = "logs"
    default_channel_reason: str = ""
    #: Forwarded variables this kind's worker never receives (paths on the code server's filesystem).
    withheld_env: frozenset[str] = frozenset()

    def settings(self, launcher: WorkerLauncher) -> Any:
        """The kind's settings on ``launcher``, unset fields taken from ``settings_env``; None without settings.

        Raises:
            WorkerLaunchError: ``settings_env`` is set but is not a JSON object of the model's fields.
        """
        if self.settings_field is None or self.settings_model is None:
            return None
        value = getattr(launcher, self.settings_field)
        return value if self.settings_env is None else with_env_defaults(value, self.settings_model, self.settings_env)


def _run_subprocess(*, launcher: WorkerLauncher, settings: Any, **pipes: Any) -> dg.PipesClientCompletedInvocation:
    from orchestrator.launchers.subprocess_launcher import run_subprocess_worker

    return run_subprocess_worker(python_executable=launcher.python_executable, **pipes)


def _subprocess_reader() -> RecordsHandler:
    from orchestrator.launchers.subprocess_launcher import SubprocessMessageReader

    return SubprocessMessageReader()


def _run_docker(*, launcher: WorkerLauncher, settings: Any, **pipes: Any) -> dg.PipesClientCompletedInvocation:
    from orchestrator.launchers.docker_launcher import run_docker_worker

    return run_docker_worker(cfg=settings, **pipes)


def _docker_reader() -> RecordsHandler:
    from orchestrator.launchers.docker_launcher import LineJoiningDockerLogsMessageReader

    return LineJoiningDockerLogsMessageReader()


def _run_k8s(*, launcher: WorkerLauncher, settings: Any, **pipes: Any) -> dg.PipesClientCompletedInvocation:
    from orchestrator.launchers.k8s_launcher import run_k8s_worker

    return run_k8s_worker(cfg=settings, **pipes)


def _k8s_reader() -> RecordsHandler:
    from orchestrator.launchers.k8s_launcher import PodLogsMessageReader

    return PodLogsMessageReader()


#: Every kind, by name, in the order error messages list them (the first is the default).
LAUNCHER_KINDS: Mapping[str, LauncherKindEntry] = {
    entry.name: entry
    for entry in (
        LauncherKindEntry(name="subprocess", run=_run_subprocess, logs_reader=_subprocess_reader),
        LauncherKindEntry(
            name="docker", run=_run_docker, logs_reader=_docker_reader,
            settings_field="docker", settings_model=DockerLaunch, settings_env=DOCKER_LAUNCH_ENV,
            withheld_env=CONTAINER_UNSAFE_ENV,
        ),
        LauncherKindEntry(
            name="k8s", run=_run_k8s, logs_reader=_k8s_reader,
            settings_field="k8s", settings_model=K8sLaunch, settings_env=K8S_LAUNCH_ENV,
            default_channel="gcs", default_channel_reason="so that metadata survives pod log rotation",
            withheld_env=CONTAINER_UNSAFE_ENV,
        ),
    )
}
KIND_NAMES: tuple[str, ...] = tuple(LAUNCHER_KINDS)
DEFAULT_KIND = KIND_NAMES[0]
#: The ``kind`` field's type: one of :data:`KIND_NAMES`.
LauncherKind = Literal[KIND_NAMES]  # type: ignore[valid-type]


def launcher_kind(name: str) -> LauncherKindEntry:
    """The entry of kind ``name``.

    Raises:
        WorkerLaunchError: no such kind; the message lists the kinds.
    """
    try:
        return LAUNCHER_KINDS[name]
    except KeyError:
        raise WorkerLaunchError(
            description=f"Unknown WorkerLauncher kind {name!r}: use one of {', '.join(KIND_NAMES)}"
        ) from None
