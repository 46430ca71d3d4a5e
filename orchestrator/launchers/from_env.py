"""The shared ``launcher`` resource as the deployment's environment says (read when definitions load).

- ``GCS_IMPORT_LAUNCHER``: a kind of :mod:`orchestrator.launchers.kinds`: ``subprocess`` (default), ``docker`` or ``k8s``;
- ``GCS_IMPORT_WORKER_PYTHON``: subprocess only: the interpreter that runs ``-m worker``;
- ``GCS_IMPORT_DOCKER_LAUNCH`` / ``GCS_IMPORT_K8S_LAUNCH``: JSON objects of ``DockerLaunch`` /
  ``K8sLaunch`` fields (how the Helm values configure the pod without code);
- ``GCS_IMPORT_PIPES_GCS_BUCKET`` / ``GCS_IMPORT_PIPES_GCS_PREFIX``: the Pipes channel over GCS
  (the default channel of ``k8s``); ``GCS_IMPORT_PIPES_GCS_BILLING_PROJECT``: the project billed when
  that bucket is Requester Pays; ``GCS_IMPORT_MESSAGE_CHANNEL``: ``auto``, ``logs`` or ``gcs``.

An import's defs.yaml can instead declare its own launcher with ``{{ env.X }}`` templating.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from orchestrator.launchers.kinds import DEFAULT_KIND, KIND_NAMES
from orchestrator.launchers.pipes_gcs import DEFAULT_PIPES_PREFIX, PipesGCSChannel
from orchestrator.launchers.resource import WorkerLauncher

LAUNCHER_ENV = "GCS_IMPORT_LAUNCHER"
WORKER_PYTHON_ENV = "GCS_IMPORT_WORKER_PYTHON"
MESSAGE_CHANNEL_ENV = "GCS_IMPORT_MESSAGE_CHANNEL"
PIPES_GCS_BUCKET_ENV = "GCS_IMPORT_PIPES_GCS_BUCKET"
PIPES_GCS_PREFIX_ENV = "GCS_IMPORT_PIPES_GCS_PREFIX"
PIPES_GCS_BILLING_PROJECT_ENV = "GCS_IMPORT_PIPES_GCS_BILLING_PROJECT"
MESSAGE_CHANNELS = ("auto", "logs", "gcs")


class LauncherConfigError(Exception):
    """The environment's launcher configuration is invalid (raised when definitions load)."""


def launcher_from_env(environ: Mapping[str, str] | None = None) -> WorkerLauncher:
    """The ``launcher`` resource as the variables above say.

    Raises:
        LauncherConfigError: a variable has a value the launcher cannot use; the message names it.
    """
    environ = dict(os.environ if environ is None else environ)
    kind = environ.get(LAUNCHER_ENV, DEFAULT_KIND).strip() or DEFAULT_KIND
    if kind not in KIND_NAMES:
        raise LauncherConfigError(f"{LAUNCHER_ENV}={kind!r}: use one of {', '.join(KIND_NAMES)}")
    channel = environ.get(MESSAGE_CHANNEL_ENV, "auto").strip() or "auto"
    if channel not in MESSAGE_CHANNELS:
        raise LauncherConfigError(f"{MESSAGE_CHANNEL_ENV}={channel!r}: use one of {', '.join(MESSAGE_CHANNELS)}")
    bucket = environ.get(PIPES_GCS_BUCKET_ENV, "").strip()
    pipes_gcs = (
        PipesGCSChannel(bucket=bucket, prefix=environ.get(PIPES_GCS_PREFIX_ENV, "").strip() or DEFAULT_PIPES_PREFIX,
                        billing_project=environ.get(PIPES_GCS_BILLING_PROJECT_ENV, "").strip() or None)
        if bucket else None
    )
    launcher = WorkerLauncher(kind=kind, python_executable=environ.get(WORKER_PYTHON_ENV) or None,
                              message_channel=channel, pipes_gcs=pipes_gcs)
    try:
        launcher.validate()  # bad JSON in the *_LAUNCH variables, a missing channel: now, not at run time
    except dg.Failure as exc:
        message = exc.description or str(exc)
        if "pipes_gcs" in message:
            message += f" Set {PIPES_GCS_BUCKET_ENV} (and optionally {PIPES_GCS_PREFIX_ENV}), or {MESSAGE_CHANNEL_ENV}=logs."
        raise LauncherConfigError(message) from exc
    return launcher
