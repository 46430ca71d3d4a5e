"""What a worker run reports: each interval's load, the status of each requested interval, retention's outcome and
the run's summaries.

Typed data only (no I/O): :mod:`worker.run`, :mod:`worker.interval_import` and :mod:`worker.retention`
fill them, :mod:`worker.reporting` turns them into Dagster metadata and check results.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from worker.archive_decisions import ArchiveResult, ArchiveVerdict
from worker.core.contract import IntervalStatus
from worker.core.records import LoadedObject
from worker.core.spec import ImportSpec
from worker.planning import RetentionPlan
from worker.schema_changes import ColumnChange

if TYPE_CHECKING:
    from google.cloud import bigquery


@dataclass(frozen=True)
class LoadOutcome:
    """One interval's load into its raw table: rows, the jobs that did it, the raw table's schema."""

    rows: int
    job_ids: tuple[str, ...]
    reattached: int
    schema: tuple[bigquery.SchemaField, ...]
    #: The staging table the raw table was copied from (another attempt's when this one reattached).
    copied_from: str | None = None
    #: Object names the load skipped (``on_bad_file: skip``): BigQuery's load error named them, or no load
    #: job can read them by URI (:func:`worker.planning.unloadable_reason`).
    skipped: tuple[str, ...] = ()
    #: What the run must say about this load (one line each): unloadable names, Avro raw types kept.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableColumn:
    """One column of a BigQuery table, as the asset page's column schema shows it."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str | None = None


@dataclass(frozen=True)
class CleanTableState:
    """The clean table after a run: what ``dagster/row_count`` and ``dagster/column_schema`` report."""

    table_id: str
    rows: int
    columns: tuple[TableColumn, ...] = ()


@dataclass
class IntervalResult:
    """What happened to one requested interval."""

    interval_start: datetime
    status: IntervalStatus
    suffix: str
    files: int = 0
    bytes: int = 0
    rows: int = 0
    job_ids: tuple[str, ...] = ()
    reattached_jobs: int = 0
    raw_table: str = ""
    digest: str = ""
    schema_change: str | None = None
    #: Objects the load skipped (``on_bad_file: skip``): BigQuery could not read them.
    skipped_files: tuple[str, ...] = ()
    #: Why a requested change was not applied (a sealed interval whose load settings changed).
    note: str | None = None
    #: Column differences from the previous interval and what publishing changed in the clean table.
    column_changes: tuple[ColumnChange, ...] = ()
    error: str | None = None
    #: The failure is transient (a re-run is expected to succeed): see :class:`TransientError`.
    transient: bool = False
    previously_loaded: bool = False
    #: The newest GCS ``updated`` time of the objects this run loaded into the interval (None: nothing loaded,
    #: or the listing gave no time).
    newest_updated: datetime | None = None
    #: When this run's publish of the interval ended: its rows became queryable in the clean table (None: not
    #: published by this run, e.g. an Overwrite interval older than the snapshot).
    queryable_at: datetime | None = None

    @property
    def arrival_to_queryable_seconds(self) -> float | None:
        """Seconds from the newest loaded object's ``updated`` time to the end of this run's publish of the
        interval (None unless this run loaded and published it). GCS stamps ``updated`` with its clock and the
        worker the publish end with its own, so a skewed worker clock shifts it (it can then be negative)."""
        if self.newest_updated is None or self.queryable_at is None:
            return None
        return round((self.queryable_at - self.newest_updated).total_seconds(), 3)


@dataclass
class ImportSummary:
    spec: ImportSpec
    window_start: datetime
    window_end: datetime
    intervals: list[IntervalResult] = field(default_factory=list)
    listed: int = 0
    ignored: int = 0
    outside_window: int = 0
    unparseable: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    published: str | None = None
    publish_job_id: str | None = None
    publish_error: str | None = None
    #: The clean table after the run; None when it does not exist (nothing published yet).
    clean_table: CleanTableState | None = None
    #: Guards ``intervals`` and ``seconds`` (the intervals of a run are imported side by side).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_interval(self, result: IntervalResult) -> None:
        """Add one interval's result, keeping ``intervals`` in interval order (thread-safe)."""
        with self.lock:
            bisect.insort(self.intervals, result, key=lambda r: r.interval_start)

    def with_status(self, *statuses: IntervalStatus) -> list[IntervalResult]:
        return [r for r in self.intervals if r.status in statuses]

    @property
    def data_version(self) -> str:
        """Derived from the loaded object generations of the window: equal data, equal version."""
        hasher = hashlib.sha256()
        for result in sorted(self.intervals, key=lambda r: r.interval_start):
            hasher.update(f"{result.suffix}:{result.digest};".encode())
        return hasher.hexdigest()[:24]


@dataclass(frozen=True)
class BucketRetention:
    """What the bucket keeps of a deleted object (its ``versioning`` and ``softDeletePolicy``).

    On a bucket with soft delete a deleted object stays, billed, for the retention duration
    (https://cloud.google.com/storage/docs/soft-delete; on by default, 7 days); with object versioning it
    becomes a noncurrent version, billed until a lifecycle rule or a delete of that generation removes it
    (https://cloud.google.com/storage/docs/object-versioning). Either way a delete frees nothing at once.
    """

    soft_delete_seconds: int = 0
    versioning: bool = False

    @property
    def keeps_deleted(self) -> str:
        """Why deleted bytes stay billed ("" when the bucket keeps nothing)."""
        reasons = []
        if self.versioning:
            reasons.append("object versioning keeps them as noncurrent versions until a lifecycle rule deletes them")
        if self.soft_delete_seconds > 0:
            days = self.soft_delete_seconds / 86400
            reasons.append(f"soft delete keeps them for {days:g} days")
        return "; ".join(reasons)


@dataclass
class RetentionOutcome:
    plan: RetentionPlan
    dry_run: bool
    deleted: list[LoadedObject] = field(default_factory=list)
    kept_changed: list[LoadedObject] = field(default_factory=list)
    #: Completeness markers deleted after their intervals' last loaded files (not counted in ``deleted``: no data).
    markers_deleted: list[LoadedObject] = field(default_factory=list)
    #: The bucket's policy for deleted objects; None when it could not be read (no ``storage.buckets.get``).
    bucket: BucketRetention | None = None
    #: ``retention_action: archive`` only: what archiving did (None when retention deletes without archiving).
    archive: ArchiveProgress | None = None

    @property
    def bytes_deleted(self) -> int:
        """Bytes of the live objects deleted."""
        return sum(obj.size for obj in self.deleted)

    @property
    def bytes_freed(self) -> int | None:
        """Bytes no longer stored: ``bytes_deleted`` on a bucket that keeps nothing, 0 on one that keeps
        deleted objects (:attr:`freed_note` says until when), None when the bucket's policy is unknown."""
        if self.bucket is None:
            return None if self.deleted else 0
        return 0 if self.bucket.keeps_deleted else self.bytes_deleted

    @property
    def freed_note(self) -> str:
        if not self.deleted:
            return ""
        if self.bucket is None:
            return ("unknown: the bucket's soft delete and versioning settings could not be read (grant "
                    "storage.buckets.get, e.g. roles/storage.bucketViewer, to report it)")
        if self.bucket.keeps_deleted:
            return f"not yet: {self.bucket.keeps_deleted}"
        return ""


@dataclass
class DeleteProgress:
    """Objects handled so far by :func:`worker.retention.delete_planned` (kept when it fails part-way)."""

    deleted: list[LoadedObject] = field(default_factory=list)
    kept: list[LoadedObject] = field(default_factory=list)


@dataclass
class ArchiveProgress:
    """Objects archived so far by :func:`worker.archiving.archive_planned` (kept when it fails part-way);
    thread-safe: the rewrites run side by side."""

    results: list[ArchiveResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: ArchiveResult) -> None:
        with self.lock:
            self.results.append(result)

    def with_verdict(self, *verdicts: ArchiveVerdict) -> list[ArchiveResult]:
        return [r for r in self.results if r.verdict in verdicts]

    @property
    def trusted(self) -> list[ArchiveResult]:
        """Objects whose archive copy is verified (their originals may be deleted)."""
        return [r for r in self.results if r.verdict.trusted]

    @property
    def untrusted(self) -> list[ArchiveResult]:
        """Originals kept because their archive copy differs (each with its one-line note)."""
        return self.with_verdict(ArchiveVerdict.existing_differs, ArchiveVerdict.copy_differs)

    @property
    def source_changed(self) -> list[LoadedObject]:
        """Objects no longer at their loaded generation when archived (re-uploaded or gone): untouched."""
        return [r.obj for r in self.with_verdict(ArchiveVerdict.source_changed)]


@dataclass
class RetentionSummary:
    spec: ImportSpec
    as_of: datetime
    outcome: RetentionOutcome
    seconds: dict[str, float] = field(default_factory=dict)
