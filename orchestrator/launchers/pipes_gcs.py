"""The Pipes message channel over GCS: the code server writes the run's context to a GCS prefix and
the worker writes its messages there, read back by dagster-gcp's ``PipesGCSMessageReader``.

Why: through pod logs, a message is lost when the kubelet rotates the log or the log stream
reconnects, and one message is bounded by the log line limits; objects in GCS are neither.
Every kind can use it (subprocess and Docker too), so the same reader is tested locally against
the GCS emulator.

Least privilege: both sides touch objects under ``prefix`` only: the code server creates and
deletes the context object and reads message chunks, the worker reads the context and creates
message chunks. dagster-gcp's classes call ``client.get_bucket(name)`` before each object
operation, which needs ``storage.buckets.get`` on the whole bucket; :class:`ObjectsOnlyGCSClient`
answers that without a request, so a grant conditioned on the prefix suffices (docs/containers.md).

Requester Pays (https://cloud.google.com/storage/docs/requester-pays): with ``billing_project`` set,
every request of both sides carries ``userProject`` (the bucket handles are made with
``user_project``); the worker learns it from the bootstrap parameters (``user_project``), as it
learns the bucket.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_gcp.pipes.context_injectors import PipesGCSContextInjector
from dagster_gcp.pipes.message_readers import PipesGCSMessageReader
from dagster_pipes import PipesBlobStoreMessageWriter

from orchestrator.launchers.failures import RecordsHandler
from orchestrator.launchers.settings import WorkerLaunchError
from worker.core.pipes_channel import USER_PROJECT_PARAM, ObjectsOnlyGCSClient

DEFAULT_PIPES_PREFIX = "dagster-pipes"


class PipesGCSChannel(dg.Config):
    """Where the Pipes context and messages go when they go through GCS."""

    #: The bucket (a dedicated one, or a transfer bucket: only ``prefix`` is written).
    bucket: str
    #: Object prefix; the run's context and messages go under ``{prefix}/{random}/``.
    prefix: str = DEFAULT_PIPES_PREFIX
    #: Project of the GCS client (billing and quota); None: the client's default project.
    project: str | None = None
    #: Seconds between reads of new message chunks (the worker writes a chunk as often).
    poll_interval_seconds: float = 5.0
    #: Project billed for the channel's requests when ``bucket`` is Requester Pays (sent as ``userProject``
    #: by the code server and the worker; both need ``serviceusage.services.use`` on it). None: not sent.
    billing_project: str | None = None

    def clean_prefix(self) -> str:
        """``prefix`` without slashes at either end, validated."""
        prefix = self.prefix.strip("/")
        if not prefix or any(part in ("", ".", "..") for part in prefix.split("/")):
            raise WorkerLaunchError(
                description=f"pipes_gcs.prefix {self.prefix!r} is not an object prefix: use e.g. {DEFAULT_PIPES_PREFIX!r}"
            )
        return prefix


class PrefixedGCSMessageReader(RecordsHandler, PipesGCSMessageReader):
    """``PipesGCSMessageReader`` whose chunks go under a fixed prefix (the stock reader uses a bare
    random name at the bucket's root, which no prefix-scoped grant covers); it keeps the launch's
    message handler (:class:`~orchestrator.launchers.failures.RecordsHandler`)."""

    def __init__(self, *, prefix: str, user_project: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._prefix = prefix
        self._user_project = user_project

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        run_part = "".join(random.choices(string.ascii_lowercase + string.digits, k=24))  # nosec B311 # a unique name, not a secret: IAM on the prefix guards access
        yield {
            "bucket": self.bucket,
            "key_prefix": f"{self._prefix}/messages/{run_part}",
            PipesBlobStoreMessageWriter.INCLUDE_STDIO_IN_MESSAGES_KEY: self.include_stdio_in_messages,
            **({USER_PROJECT_PARAM: self._user_project} if self._user_project else {}),
        }


class BilledGCSContextInjector(PipesGCSContextInjector):
    """``PipesGCSContextInjector`` whose parameters also name the project to bill (``user_project``), so
    the worker's context loader and message writer send ``userProject`` to a Requester Pays bucket."""

    def __init__(self, *, user_project: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._user_project = user_project

    @contextmanager
    def inject_context(self, context: Any) -> Iterator[dict[str, Any]]:
        with super().inject_context(context) as params:
            yield {**params, USER_PROJECT_PARAM: self._user_project} if self._user_project else params


def gcs_context_injector_and_reader(channel: PipesGCSChannel) -> tuple[PipesGCSContextInjector, PipesGCSMessageReader]:
    """The injector and reader for ``channel``, sharing one client (Application Default Credentials:
    on GKE the code server's Workload Identity; the emulator when STORAGE_EMULATOR_HOST is set)."""
    from worker.core.gcs import storage_client

    prefix = channel.clean_prefix()
    # no bucket GET: a prefix-conditioned object grant is all the channel needs
    client = ObjectsOnlyGCSClient(storage_client(project_id=channel.project), user_project=channel.billing_project)
    injector = BilledGCSContextInjector(bucket=channel.bucket, client=client, key_prefix=f"{prefix}/context/",
                                        user_project=channel.billing_project)
    reader = PrefixedGCSMessageReader(
        prefix=prefix, bucket=channel.bucket, client=client, interval=channel.poll_interval_seconds,
        user_project=channel.billing_project,
    )
    return injector, reader
