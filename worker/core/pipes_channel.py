"""How the worker opens Dagster Pipes: through environment variables and stdout (the default), or
through GCS objects when the launcher injected the context into GCS (``PipesGCSChannel``).

The worker recognises the GCS channel from the bootstrap parameters themselves (a context with
``bucket`` and ``key``), so nothing else has to be configured on the worker side; a Requester Pays
channel bucket comes with ``user_project`` there too (the project billed, sent as ``userProject``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Bootstrap parameter naming the project billed for a Requester Pays channel bucket.
USER_PROJECT_PARAM = "user_project"


class ObjectsOnlyGCSClient:
    """A ``google.cloud.storage.Client`` whose ``get_bucket`` makes no request.

    Dagster's GCS Pipes classes call ``client.get_bucket(name).blob(key)``; ``get_bucket`` reads the
    bucket's metadata, which needs ``storage.buckets.get`` on the whole bucket. Both sides only
    read and write objects under one prefix, so ``bucket(name)`` (no request) is all they need, and
    a grant on the prefix alone is enough. With ``user_project`` every request on the bucket carries
    ``userProject`` (a Requester Pays bucket refuses it otherwise). Everything else is the wrapped client's.
    """

    def __init__(self, client: Any, *, user_project: str | None = None) -> None:
        self._client = client
        self._user_project = user_project

    def get_bucket(self, bucket_or_name: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(bucket_or_name, "name", bucket_or_name)
        return self._client.bucket(name, user_project=self._user_project)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def uses_gcs_channel(context_params: dict[str, Any]) -> bool:
    """Whether the launcher put the context in GCS (dagster-gcp's ``PipesGCSContextInjector`` params)."""
    return bool(context_params.get("bucket")) and bool(context_params.get("key"))


@contextmanager
def open_worker_pipes(*, project_id: str | None = None) -> Iterator[Any]:
    """``open_dagster_pipes`` with the GCS loader and writer when the context is in GCS, else the defaults."""
    from dagster_pipes import (
        PipesEnvVarParamsLoader,
        PipesGCSContextLoader,
        PipesGCSMessageWriter,
        open_dagster_pipes,
    )

    loader = PipesEnvVarParamsLoader()
    context_params = loader.load_context_params()
    if not uses_gcs_channel(context_params):
        with open_dagster_pipes(params_loader=loader) as pipes:
            yield pipes
        return
    from worker.core.gcs import storage_client

    client = ObjectsOnlyGCSClient(storage_client(project_id=project_id),
                                  user_project=context_params.get(USER_PROJECT_PARAM) or None)
    with open_dagster_pipes(
        params_loader=loader,
        context_loader=PipesGCSContextLoader(client=client),
        message_writer=PipesGCSMessageWriter(client=client, interval=_message_interval()),
    ) as pipes:
        yield pipes


def _message_interval() -> float:
    """Seconds between message chunk uploads (``GCS_IMPORT_PIPES_INTERVAL``, default 5)."""
    import os

    try:
        return max(0.5, float(os.environ.get("GCS_IMPORT_PIPES_INTERVAL", "5")))
    except ValueError:
        return 5.0
