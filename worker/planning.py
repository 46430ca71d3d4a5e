"""Pure planning: which load jobs each interval needs, which intervals to skip, which objects retention may delete.

Nothing here performs I/O, so every decision is unit-tested directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.matching import ObjectInfo
from worker.spec import ImportSpec

#: BigQuery accepts at most 10,000 source URIs per load job.
MAX_URIS_PER_JOB = 10_000
#: A GCS batch request carries at most 100 calls.
MAX_DELETES_PER_BATCH = 100


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


@dataclass(frozen=True)
class IntervalLoadPlan:
    """What loading one interval takes: its URIs in batches and the ids of its jobs."""

    interval_start: datetime
    interval_end: datetime
    objects: tuple[ObjectInfo, ...]
    #: Content digest: equal exactly when the same object generations would be loaded (the data version).
    digest: str
    #: Identity of this load in job and staging-table names: the digest plus the ledger's previous load
    #: of the interval, so a retry of the same load reattaches while a later load of the same files
    #: (after the interval held other files in between) gets new jobs.
    load_key: str
    raw_table_id: str
    staging_table_id: str
    batches: tuple[tuple[str, ...], ...]
    skip: bool

    @property
    def suffix(self) -> str:
        return self.raw_table_id.rsplit("__", 1)[1]

    @property
    def total_bytes(self) -> int:
        return sum(obj.size for obj in self.objects)

    def load_job_base(self, batch_index: int, *, spec: ImportSpec) -> str:
        """Deterministic id (without attempt suffix) of the load job for one batch."""
        return f"gcs_import_{spec.name}_{self.suffix}_{self.load_key}_load{batch_index}"

    def copy_job_base(self, *, spec: ImportSpec) -> str:
        return f"gcs_import_{spec.name}_{self.suffix}_{self.load_key}_copy"


def generations_digest(spec: ImportSpec, interval_start: datetime, objects: Iterable[ObjectInfo]) -> str:
    """A hash of (spec, interval, object names and generations): equal iff the same data would be loaded."""
    hasher = hashlib.sha256()
    hasher.update(f"{spec.fingerprint()}|{interval_start.isoformat()}".encode())
    for obj in sorted(objects):
        hasher.update(f"|{obj.name}#{obj.generation}".encode())
    return hasher.hexdigest()[:16]


def batch_uris(bucket: str, objects: Sequence[ObjectInfo], *, max_uris: int = MAX_URIS_PER_JOB) -> tuple[tuple[str, ...], ...]:
    """``gs://`` URIs in batches of at most ``max_uris``: N files cost ceil(N / max_uris) jobs."""
    uris = [f"gs://{bucket}/{obj.name}" for obj in objects]
    return tuple(tuple(uris[i : i + max_uris]) for i in range(0, len(uris), max_uris))


def plan_interval_load(
    spec: ImportSpec,
    *,
    interval_start: datetime,
    objects: Sequence[ObjectInfo],
    recorded: Mapping[str, int] | None,
    previous_load: datetime | None = None,
    recorded_digest: str | None = None,
    max_uris: int = MAX_URIS_PER_JOB,
) -> IntervalLoadPlan:
    """Plan one interval's load.

    ``recorded`` is the ledger's {object name: generation} for this interval (None
    when it was never loaded), ``previous_load`` when that was recorded and
    ``recorded_digest`` the digest it was loaded with. The load is skipped exactly
    when the interval holds the same objects at the same generations as recorded
    and was loaded with the same load settings (a changed schema, format or CSV
    option reloads it).
    """
    ordered = tuple(sorted(objects))
    digest = generations_digest(spec, interval_start, ordered)
    previous = previous_load.isoformat() if previous_load else "never"
    load_key = hashlib.sha256(f"{digest}|{previous}".encode()).hexdigest()[:16]
    raw_table_id = spec.raw_table_id(interval_start)
    current = {obj.name: obj.generation for obj in ordered}
    return IntervalLoadPlan(
        interval_start=interval_start,
        interval_end=spec.interval.next_start(interval_start),
        objects=ordered,
        digest=digest,
        load_key=load_key,
        raw_table_id=raw_table_id,
        staging_table_id=f"{raw_table_id}__staging_{load_key}",
        batches=batch_uris(spec.bucket_name, ordered, max_uris=max_uris),
        skip=bool(ordered) and recorded is not None and dict(recorded) == current
        and recorded_digest in (None, digest),
    )


def overwrite_target(loaded_intervals: Iterable[datetime]) -> datetime | None:
    """The interval an Overwrite clean table must hold: the newest one ever loaded.

    Loading an older interval (a backfill) therefore never replaces a newer snapshot.
    """
    return max(loaded_intervals, default=None)


@dataclass(frozen=True)
class RetentionPlan:
    """Objects retention will delete, and recorded objects it keeps because they changed since loading."""

    cutoff: datetime
    to_delete: tuple[LoadedObject, ...]
    changed_since_load: tuple[LoadedObject, ...]
    already_gone: tuple[LoadedObject, ...]

    @property
    def bytes_to_free(self) -> int:
        return sum(obj.size for obj in self.to_delete)

    def delete_batches(self, *, size: int = MAX_DELETES_PER_BATCH) -> list[tuple[LoadedObject, ...]]:
        items = self.to_delete
        return [items[i : i + size] for i in range(0, len(items), size)]


def retention_cutoff(spec: ImportSpec, *, as_of: datetime) -> datetime:
    """Intervals that ended at or before this instant are past retention."""
    return as_of - timedelta(days=spec.retention_days)


def plan_retention(
    spec: ImportSpec,
    *,
    as_of: datetime,
    recorded: Iterable[LoadedObject],
    current_generations: Mapping[str, int],
) -> RetentionPlan:
    """Choose what retention deletes: only objects the ledger recorded as loaded, of intervals
    whose end is at or before ``as_of - retention_days``, and only while the object still has
    the recorded generation (a re-uploaded object is kept: its new data was never loaded).
    Objects that never matched the pattern are never in the ledger, so never touched.
    """
    cutoff = retention_cutoff(spec, as_of=as_of)
    to_delete: list[LoadedObject] = []
    changed: list[LoadedObject] = []
    gone: list[LoadedObject] = []
    for obj in sorted(recorded, key=lambda o: (o.interval_start, o.name)):
        if obj.deleted or spec.interval.next_start(obj.interval_start) > cutoff:
            continue
        current = current_generations.get(obj.name)
        if current is None:
            gone.append(obj)
        elif current != obj.generation:
            changed.append(obj)
        else:
            to_delete.append(obj)
    return RetentionPlan(cutoff=cutoff, to_delete=tuple(to_delete), changed_since_load=tuple(changed),
                         already_gone=tuple(gone))
