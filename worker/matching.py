"""Matching: which GCS objects belong to which interval.

:func:`match_objects` is pure (names in, intervals out) and is shared by the
worker and the orchestrator's new-files sensor. :func:`list_objects` is the I/O:
it streams names and metadata only, page by page, never object contents.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from google.cloud import storage

from worker.errors import explain_gcs_error
from worker.intervals import parse_interval_start
from worker.spec import TIMESTAMP_GROUP, ImportSpec

#: Only what matching, loading and retention need; keeps listing responses small.
LIST_FIELDS = "items(name,generation,size),nextPageToken"


@dataclass(frozen=True, order=True, slots=True)
class ObjectInfo:
    """One GCS object as listed: its name, generation and size, nothing else.

    An interval can hold tens of thousands of objects and the worker keeps one of these
    for each (about 150 bytes with its name), never the client's ``Blob``.
    """

    name: str
    generation: int
    size: int

    @classmethod
    def from_blob(cls, blob: storage.Blob) -> ObjectInfo:
        """The listed ``blob``'s name, generation and size (0 when the listing gave none)."""
        return cls(name=blob.name, generation=int(blob.generation), size=int(blob.size or 0))


@dataclass
class MatchResult:
    """Objects grouped by interval start, and what did not match.

    ``by_interval`` holds only the intervals asked for (all when none were given);
    ``outside_window`` counts matched objects of other intervals.
    """

    by_interval: dict[datetime, list[ObjectInfo]] = field(default_factory=dict)
    listed: int = 0
    ignored: int = 0
    unparseable: list[str] = field(default_factory=list)
    outside_window: int = 0

    @property
    def matched(self) -> int:
        return sum(len(objs) for objs in self.by_interval.values()) + self.outside_window


def match_objects(
    spec: ImportSpec, objects: Iterable[ObjectInfo], *, intervals: Collection[datetime] | None = None
) -> MatchResult:
    """Group ``objects`` by the interval their name's ``interval_timestamp`` falls in.

    A name must fully match ``path_base/`` + ``file_match``; other names are counted
    as ignored. A matching name whose timestamp does not parse is listed in
    ``unparseable`` and skipped. With ``intervals``, only those intervals are kept
    (so memory grows with the window, not with the bucket).
    """
    pattern = spec.name_pattern
    fmt = spec.effective_timestamp_format
    wanted = set(intervals) if intervals is not None else None
    result = MatchResult()
    for obj in objects:
        result.listed += 1
        found = pattern.fullmatch(obj.name)
        if found is None:
            result.ignored += 1
            continue
        try:
            start = parse_interval_start(found.group(TIMESTAMP_GROUP), interval=spec.interval, timestamp_format=fmt)
        except ValueError:
            result.unparseable.append(obj.name)
            continue
        if wanted is not None and start not in wanted:
            result.outside_window += 1
            continue
        result.by_interval.setdefault(start, []).append(obj)
    for objs in result.by_interval.values():
        objs.sort()
    return result


def list_objects(
    client: storage.Client,
    spec: ImportSpec,
    *,
    start_offset: str | None = None,
    retry=None,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[ObjectInfo]:
    """Stream every object under ``path_base/`` (names and metadata only).

    Raises:
        WorkerError: the bucket is missing or not readable (names the bucket).
    """
    kwargs = {"prefix": spec.object_prefix or None, "fields": LIST_FIELDS, "page_size": 1000}
    if start_offset:
        kwargs["start_offset"] = start_offset
    if retry is not None:
        kwargs["retry"] = retry
    count = 0
    try:
        pages = client.list_blobs(spec.gcs_bucket(client), **kwargs).pages
        for page in pages:
            for blob in page:
                count += 1
                yield ObjectInfo.from_blob(blob)
            if on_page is not None:
                on_page(count)
    except Exception as exc:
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.GoogleAPIError):
            raise explain_gcs_error(exc, bucket=spec.bucket_name, action=f"listing {spec.object_prefix or '/'}") from exc
        raise
