"""``kind="docker"``: the worker image as a container on the engine ``DOCKER_HOST`` names.

The image must already be on that engine unless ``docker.pull`` is set: a missing image fails at
once with its name and the build command (no registry pull is tried). Every container carries the
label ``gcs-import.worker=1`` and a per-launch ``gcs-import.launch-id`` and is removed after the
run, success or failure (``PipesDockerClient`` itself only stops it). Pipes messages are read from
the container log stream; lines the engine split into 16 KiB pieces are joined again before
parsing, so large metadata survives.
"""

from __future__ import annotations

import codecs
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_docker.pipes import PipesDockerLogsMessageReader

from orchestrator.launchers.failures import RecordsHandler, extract_message_or_forward_to_stdout
from orchestrator.launchers.settings import BUILD_HINT, LAUNCH_ID_LABEL, WORKER_LABEL, DockerLaunch, WorkerLaunchError


def docker_container_kwargs(cfg: DockerLaunch, launch_id: str) -> dict[str, Any]:
    """Arguments for ``docker.containers.create`` besides image, command and environment."""
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
        kwargs["tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=512m"}  # nosec B108 # the container's own private tmpfs, not a shared host /tmp
    if cfg.user:
        kwargs["user"] = cfg.user
    if cfg.entrypoint:
        kwargs["entrypoint"] = list(cfg.entrypoint)
    return kwargs


def run_docker_worker(
    *,
    context: Any,
    extras: Mapping[str, Any],
    env: Mapping[str, str],
    cfg: DockerLaunch,
    context_injector: Any = None,
    message_reader: Any = None,
) -> dg.PipesClientCompletedInvocation:
    """Run the worker container with ``PipesDockerClient`` and remove it afterwards.

    Raises:
        WorkerLaunchError: no engine is reachable, or the image is missing and ``pull`` is off.
        docker.errors.DockerException, DagsterPipesError: the container failed or could not run.
    """
    import docker
    import docker.errors
    from dagster_docker import PipesDockerClient

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
        client = PipesDockerClient(
            env=dict(env),
            context_injector=context_injector,
            message_reader=message_reader or LineJoiningDockerLogsMessageReader(),
        )
        try:
            return client.run(
                context=context, image=cfg.image, extras=dict(extras),
                container_kwargs=docker_container_kwargs(cfg, launch_id),
            )
        finally:
            if cfg.remove:
                remove_worker_containers(engine, launch_id, context)
    finally:
        engine.close()


class LineJoiningDockerLogsMessageReader(RecordsHandler, PipesDockerLogsMessageReader):
    """``PipesDockerLogsMessageReader`` that parses whole lines (and keeps the launch's message handler).

    The Docker engine splits a log line longer than 16 KiB into several log entries, and the
    log stream yields entries, not lines; the stock reader parses each entry on its own, so a
    large Pipes message (big metadata) would be lost as unparseable text. This reader joins
    entries and hands complete lines to Dagster.
    """

    def consume_docker_logs(self, container) -> None:
        handler = self._handler
        if handler is None:
            raise RuntimeError("Can only consume logs within the message reader's context.")
        for line in join_log_lines(container.logs(stdout=True, stderr=True, stream=True, follow=True)):
            extract_message_or_forward_to_stdout(handler, line)


def join_log_lines(chunks: Iterator[bytes | str]) -> Iterator[str]:
    """Complete lines (without the newline) from a stream of arbitrarily cut chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        *lines, pending = pending.split("\n")
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def remove_worker_containers(engine: Any, launch_id: str, context: Any) -> None:
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
