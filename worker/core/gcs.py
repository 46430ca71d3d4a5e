"""Google Cloud Storage for both sides: the one client factory and the one object listing.

The worker lists an import's objects to match and delete them; the orchestrator's new-files sensor
lists them to notice arrivals; both open the Pipes channel over GCS with the same client. Against
the local emulator (``STORAGE_EMULATOR_HOST``) the client uses :func:`emulator_credentials`.
Listings stream names, generations, sizes and update times only (:data:`LIST_FIELDS`), page by page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from worker.core.errors import explain_gcs_error
from worker.core.records import ObjectInfo

if TYPE_CHECKING:
    from worker.core.listing_ranges import ListingRanges
    from worker.core.spec import ImportSpec

#: Only what matching, loading, retention and the sensor need; keeps listing responses small.
LIST_FIELDS = "items(name,generation,size,updated),nextPageToken"
#: Names per listing request (the most GCS returns in one page).
PAGE_SIZE = 1000


def emulator_credentials() -> Any:
    """Credentials for the local emulators: anonymous, or refreshed at ``GCS_IMPORT_EMULATOR_TOKEN_URI``."""
    token_uri = os.environ.get("GCS_IMPORT_EMULATOR_TOKEN_URI")
    if not token_uri:
        return AnonymousCredentials()
    from google.oauth2.credentials import Credentials

    # test-only placeholders for the emulators' token endpoint, not secrets
    return Credentials(token=None, refresh_token="emulator", token_uri=token_uri,  # nosec B106 # placeholders
                       client_id="emulator", client_secret="emulator")  # nosec B106 # placeholders


def storage_client(*, project_id: str | None) -> storage.Client:
    """A GCS client for ``project_id`` (emulator credentials when ``STORAGE_EMULATOR_HOST`` is set), without
    the library's background bucket GET (see :func:`without_bucket_metadata_fetch`)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return without_bucket_metadata_fetch(storage.Client(project=project_id, credentials=emulator_credentials()))
    return without_bucket_metadata_fetch(storage.Client(project=project_id))


def without_bucket_metadata_fetch(client: Any) -> Any:
    """``client`` with google-cloud-storage's bucket-metadata cache turned off; returns ``client``.

    google-cloud-storage 3.x keeps a per-client bucket-metadata cache for its tracing attributes:
    the first call on a bucket queues a background ``GET /b/{bucket}``, which needs
    ``storage.buckets.get`` (not in the object roles the worker and the sensor are granted) and
    costs a request: a sensor making a new client each tick made that GET each tick. Without the
    cache the worker and a tick send object requests only. (The library's process-wide
    switch is the environment variable ``DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA=true``.)
    """
    if getattr(client, "_bucket_metadata_cache", None) is not None:
        client._bucket_metadata_cache = None
    return client


class ObjectListing:
    """The objects under an import's ``path_base/``, in name order, as :class:`ObjectInfo` (names and
    metadata only, never contents), one request per :data:`PAGE_SIZE` names.

    ``start_offset`` (inclusive) and ``end_offset`` (exclusive) bound the names; ``skip_through`` drops the
    names up to it too (a resumed listing starts at its last name, which GCS returns again and counts
    against ``max_results``); ``max_results`` bounds how many GCS returns (the last page asks for what
    is left, so no request goes past the bound).
    After iteration, :attr:`truncated` says whether more names follow. A server that ignores
    ``startOffset``, ``endOffset`` or ``maxResults`` (gcp-storage-emulator answers one page of every
    name) gets the same result: names before ``start_offset`` are dropped here, and the listing stops at
    the first name at or past ``end_offset`` (names come in order, so no later page is requested).

    Raises (while iterating):
        WorkerError: the bucket is missing or not readable (names the bucket and the fix).
    """

    def __init__(self, client: storage.Client, spec: ImportSpec, *, start_offset: str | None = None,
                 end_offset: str | None = None, skip_through: str | None = None, max_results: int | None = None, page_size: int = PAGE_SIZE,
                 retry: Any = None, on_page: Callable[[int], None] | None = None) -> None:
        self._client, self._spec = client, spec
        self._start, self._end, self._max = start_offset, end_offset, max_results
        self._skip_through = skip_through
        self._page_size, self._retry, self._on_page = page_size, retry, on_page
        #: More names follow the ones returned (known once the iteration ended).
        self.truncated = False

    def __iter__(self) -> Iterator[ObjectInfo]:
        from google.api_core import exceptions as gexc

        spec = self._spec
        try:
            yield from self._objects()
        except gexc.GoogleAPIError as exc:
            raise explain_gcs_error(exc, bucket=spec.bucket_name, action=f"listing {spec.object_prefix or '/'}") from exc

    def _objects(self) -> Iterator[ObjectInfo]:
        kwargs: dict[str, Any] = {"prefix": self._spec.object_prefix or None, "fields": LIST_FIELDS,
                                  "page_size": self._page_size}
        for key, value in (("start_offset", self._start), ("end_offset", self._end), ("max_results", self._max),
                           ("retry", self._retry)):
            if value is not None:
                kwargs[key] = value
        iterator = self._client.list_blobs(self._spec.gcs_bucket(self._client), **kwargs)
        count = 0
        for page in iterator.pages:
            for blob in page:
                if self._start is not None and blob.name < self._start:
                    continue  # only a server that ignores startOffset returns these
                if self._end is not None and blob.name >= self._end:
                    return  # only a server that ignores endOffset gets here: every later name is past it too
                if self._skip_through is not None and blob.name <= self._skip_through:
                    continue
                if self._max is not None and count >= self._max:
                    self.truncated = True  # only a server that ignores maxResults gets here
                    return
                count += 1
                yield ObjectInfo.from_blob(blob)
            if self._on_page is not None:
                self._on_page(count)
        self.truncated = iterator.next_page_token is not None


def list_objects(client: storage.Client, spec: ImportSpec, **bounds: Any) -> ObjectListing:
    """The objects under ``path_base/`` (see :class:`ObjectListing` for ``bounds`` and failures)."""
    return ObjectListing(client, spec, **bounds)


def list_ranges(client: storage.Client, spec: ImportSpec, *, ranges: ListingRanges, retry: Any = None,
                on_page: Callable[[int], None] | None = None) -> Iterator[ObjectInfo]:
    """The objects in ``ranges`` (planned by :func:`worker.core.listing_ranges.plan_listing_ranges`), in name
    order: one :class:`ObjectListing` per range (``startOffset``/``endOffset``, stopping at the first name
    past the range), or the whole prefix when ``ranges`` is not narrowed. ``on_page`` gets the running
    count over all ranges. Raises as :class:`ObjectListing` does."""
    if ranges.ranges is None:
        yield from ObjectListing(client, spec, retry=retry, on_page=on_page)
        return
    done = 0
    for key_range in ranges.ranges:
        listing = ObjectListing(client, spec, start_offset=key_range.start, end_offset=key_range.stop, retry=retry,
                                on_page=None if on_page is None else (lambda n, before=done: on_page(before + n)))
        for obj in listing:
            done += 1
            yield obj
