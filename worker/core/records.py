"""The record types both sides share: an object as listed, as the ledger records it, and a pending load's key.

Typed data only (no I/O). The ledger (:mod:`worker.ledger`) reads and writes them; planning
(:mod:`worker.planning`) decides from them; the orchestrator's sensor folds :class:`ObjectInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from google.cloud import storage


@dataclass(frozen=True, order=True, slots=True)
class ObjectInfo:
    """One GCS object as listed: its name, generation and size, nothing else.

    An interval can hold tens of thousands of objects and the worker keeps one of these
    for each (about 150 bytes with its name), never the client's ``Blob``.
    """

    name: str
    generation: int
    size: int
    #: When the object was last updated (GCS ``updated``), ``None`` when the listing or record gave none.
    #: Read by the completeness gate (``quiet_for``) and ``arrival_to_queryable_seconds``; not compared.
    updated: datetime | None = field(default=None, compare=False)

    @classmethod
    def from_blob(cls, blob: storage.Blob) -> ObjectInfo:
        """The listed ``blob``'s name, generation, size (0 when the listing gave none) and ``updated`` time."""
        return cls(name=blob.name, generation=int(blob.generation), size=int(blob.size or 0), updated=blob.updated)


#: The ``job_id`` the ledger records for an object a load skipped (``on_bad_file: skip``): it holds no
#: rows, so retention never deletes it and a new generation of it is loaded (in addition, when sealed).
SKIPPED_JOB_ID = "skipped"
#: The ``job_id`` the ledger records for a completeness marker (``complete_when.marker_match``): recorded with
#: its generation so retention can delete it after the interval's last loaded file, but it holds no rows and is
#: never data (:attr:`RecordedInterval.objects` leaves it out; :attr:`RecordedInterval.markers` holds it).
MARKER_JOB_ID = "marker"


@dataclass(frozen=True)
class LoadedObject:
    """One object as the ledger recorded it when its interval was loaded."""

    interval_start: datetime
    name: str
    generation: int
    size: int
    deleted: bool = False
    interval_rows: int = 0
    loaded_at: datetime | None = None
    #: The content digest of the load (spec load settings + generations); None in rows written without it.
    digest: str | None = None
    #: Retention sealed the object's interval (it is never rebuilt from a listing again).
    sealed: bool = False
    job_id: str | None = None

    @property
    def skipped(self) -> bool:
        """The load skipped this object (BigQuery could not read it): none of its rows are in BigQuery."""
        return self.job_id == SKIPPED_JOB_ID

    def as_listed(self, *, updated: datetime | None = None) -> ObjectInfo:
        """The object as a listing shows it (name, generation, size; ``updated`` when the caller knows it)."""
        return ObjectInfo(name=self.name, generation=self.generation, size=self.size, updated=updated)

    @property
    def marker(self) -> bool:
        """A completeness marker, recorded beside the interval's data (no rows; never loaded)."""
        return self.job_id == MARKER_JOB_ID


@dataclass(frozen=True)
class RecordedInterval:
    """What the ledger holds for one interval of one asset."""

    interval_start: datetime
    #: Every recorded data object (deleted ones included): the rows BigQuery holds for this interval.
    objects: tuple[LoadedObject, ...]
    #: Retention recorded a seal before deleting any object: from then on BigQuery holds the only
    #: copy of some rows, so the interval is never rebuilt from a listing again.
    sealed: bool
    interval_rows: int
    loaded_at: datetime | None
    digest: str | None
    #: The interval's recorded completeness markers (deleted ones included): never data, no rows.
    markers: tuple[LoadedObject, ...] = ()

    @property
    def generations(self) -> dict[str, int]:
        return {obj.name: obj.generation for obj in self.objects}

    @property
    def deleted_names(self) -> list[str]:
        return sorted(obj.name for obj in self.objects if obj.deleted)

    @classmethod
    def from_rows(cls, rows: Sequence[LoadedObject]) -> RecordedInterval:
        """Group one interval's ledger rows (markers apart from data); interval-wide fields are read from the
        newest load."""
        newest = max(rows, key=lambda o: o.loaded_at or datetime.min.replace(tzinfo=UTC))
        return cls(
            interval_start=rows[0].interval_start,
            objects=tuple(sorted((o for o in rows if not o.marker), key=lambda o: o.name)),
            markers=tuple(sorted((o for o in rows if o.marker), key=lambda o: o.name)),
            # Rows deleted by a release that did not write seals are sealed too.
            sealed=any(o.sealed or o.deleted for o in rows),
            interval_rows=newest.interval_rows,
            loaded_at=newest.loaded_at,
            digest=newest.digest,
        )


@dataclass(frozen=True)
class SnapshotCandidate:
    """A loaded interval an Overwrite clean table could hold."""

    interval_start: datetime
    rows: int


@dataclass(frozen=True)
class LedgerEntry:
    """What to record for one object of a loaded interval."""

    name: str
    generation: int
    size: int
    job_id: str

    def as_listed(self) -> ObjectInfo:
        """The entry's object as a listing shows it (name, generation, size)."""
        return ObjectInfo(name=self.name, generation=self.generation, size=self.size)


@dataclass(frozen=True, order=True)
class PendingKey:
    """Which attempt's load a pending-load row belongs to: its copy job id base (shared by every attempt of the
    same load: :meth:`worker.planning.IntervalLoadPlan.copy_job_base`), whether that copy appends to a sealed
    interval, and the attempt's private staging table the copy reads."""

    copy_job_base: str
    staging_table_id: str
    append: bool

    #: The separator of the stored form (no job id or table id can hold it).
    _SEPARATOR = "|"
    #: The copy id of an append ends with it (:meth:`worker.planning.IntervalLoadPlan.copy_job_base`).
    _APPEND_SUFFIX = "_append"

    def stored(self) -> str:
        """The ``pending_key`` column's value: ``copy job base|staging table`` (the form every release wrote)."""
        return f"{self.copy_job_base}{self._SEPARATOR}{self.staging_table_id}"

    @classmethod
    def from_stored(cls, text: str) -> PendingKey:
        """The key of a stored ``pending_key`` value (the one place that reads the stored form)."""
        copy_job_base, staging_table_id = text.split(cls._SEPARATOR, 1)
        return cls(copy_job_base=copy_job_base, staging_table_id=staging_table_id,
                   append=copy_job_base.endswith(cls._APPEND_SUFFIX))


@dataclass(frozen=True)
class PendingWrite:
    """One interval's pending load, as written before its copy (:meth:`worker.ledger.PendingLoads.write_many`)."""

    interval_start: datetime
    key: PendingKey
    entries: tuple[LedgerEntry, ...]


@dataclass(frozen=True)
class IntervalRecord:
    """What the ledger records for one interval after a load (:meth:`worker.ledger.Ledger.record_intervals`)."""

    interval_start: datetime
    entries: tuple[LedgerEntry, ...]
    interval_rows: int
    raw_table: str
    loaded_at: datetime
    digest: str
