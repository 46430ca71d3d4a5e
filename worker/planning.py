"""Pure planning: which load jobs each interval needs, which intervals to skip, which objects retention may delete.

Nothing here performs I/O, so every decision is unit-tested directly.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.core.completeness import Completeness, decide_completeness
from worker.core.records import LoadedObject, ObjectInfo, RecordedInterval, SnapshotCandidate
from worker.core.retention_window import past_retention, retention_cutoff
from worker.core.spec import ImportSpec

#: BigQuery accepts at most 10,000 source URIs per load job.
MAX_URIS_PER_JOB = 10_000
#: A jobs.insert body is at most 10 MB ("Maximum request size: 10 MB",
#: https://cloud.google.com/bigquery/quotas#api_request_quotas). Object names are up to 1,024 bytes, and the
#: client sends them JSON-escaped (non-ASCII as \uXXXX: up to 3x longer), so 10,000 long names do not fit: a
#: batch's URIs get at most 9 MiB of the body, leaving 1 MiB for the rest (schema, options, job reference).
MAX_URI_BYTES_PER_JOB = 9 * 1024 * 1024
#: A GCS batch request carries at most 100 calls.
MAX_DELETES_PER_BATCH = 100


class IntervalAction(enum.StrEnum):
    """What an import does with one requested interval (decided by :func:`decide_interval`)."""

    #: First load, or a reload of an open interval from its complete, changed listing.
    LOAD = "load"
    #: The same object generations loaded with the same settings: nothing to do.
    SKIP = "skip"
    #: A sealed interval holds object names the ledger does not know: load those *in addition*.
    ADD = "add"
    #: Loaded before and nothing to load now: a sealed interval with nothing new, or every file gone.
    KEEP = "keep"
    #: A sealed interval holds a new generation of an object already loaded: refused, nothing changes.
    REFUSE = "refuse"
    #: Never loaded and no files.
    NO_FILES = "no_files"


@dataclass(frozen=True)
class IntervalDecision:
    """The decision for one interval: the action, the objects to load (for LOAD and ADD), and why."""

    action: IntervalAction
    #: LOAD: the whole listing; ADD: only the names the ledger does not know.
    to_load: tuple[ObjectInfo, ...] = ()
    #: REFUSE: recorded objects whose generation changed after the interval was sealed.
    conflicts: tuple[ObjectInfo, ...] = ()
    #: The digest the interval has after this decision (its data version).
    digest: str = ""
    #: Sealed intervals: the load settings changed since the interval was loaded. Its rows cannot be
    #: reloaded with the new settings (retention deleted files), so they stay as loaded; the run says so.
    settings_changed: bool = False


def recorded_digest(spec: ImportSpec, recorded: RecordedInterval) -> str:
    """The digest (data version) of what BigQuery holds for a recorded interval."""
    return recorded.digest or generations_digest(
        spec, recorded.interval_start,
        [o.as_listed() for o in recorded.objects],
    )


def decide_interval(
    spec: ImportSpec, *, interval_start: datetime, listed: Sequence[ObjectInfo], recorded: RecordedInterval | None,
) -> IntervalDecision:
    """Decide what to do with one interval from its listing and its ledger record.

    The rules (the README's "What one run does" states them for users):

    - never loaded: LOAD the listing (NO_FILES when there is none);
    - open (not sealed): GCS is the truth. The same generations with the same settings SKIP;
      any change (added, removed, re-uploaded file; changed load settings) LOADs the interval
      again from its complete listing; an interval whose files are all gone is KEPT (never
      replaced by nothing);
    - sealed (retention recorded that it deletes from it): BigQuery may hold the only copy of
      its rows, so it is never rebuilt. Names the ledger does not know are ADDed; a new
      generation of a recorded name is REFUSED (its old rows cannot be told apart from the
      others); otherwise the interval is KEPT as loaded. A changed load setting does not
      reload a sealed interval: the reload is refused (``settings_changed``), and the run names
      the deleted objects that make it impossible.
    """
    listed = tuple(sorted(listed))
    if recorded is None:
        if not listed:
            return IntervalDecision(IntervalAction.NO_FILES)
        return IntervalDecision(IntervalAction.LOAD, to_load=listed, digest=generations_digest(spec, interval_start, listed))
    known = recorded.generations
    kept_digest = recorded_digest(spec, recorded)
    if not recorded.sealed:
        if not listed:
            return IntervalDecision(IntervalAction.KEEP, digest=kept_digest)
        digest = generations_digest(spec, interval_start, listed)
        same = {o.name: o.generation for o in listed} == known and recorded.digest in (None, digest)
        if same:
            return IntervalDecision(IntervalAction.SKIP, digest=digest)
        return IntervalDecision(IntervalAction.LOAD, to_load=listed, digest=digest)
    # skipped objects hold no rows: a new generation of one is new data, not a conflicting re-upload
    loaded = {o.name: o.generation for o in recorded.objects if not o.skipped}
    conflicts = tuple(o for o in listed if o.name in loaded and loaded[o.name] != o.generation)
    if conflicts:
        return IntervalDecision(IntervalAction.REFUSE, conflicts=conflicts, digest=kept_digest)
    recorded_objects = [o.as_listed() for o in recorded.objects]
    settings_changed = recorded.digest is not None and recorded.digest != generations_digest(
        spec, interval_start, recorded_objects)
    new = tuple(o for o in listed if o.name not in known or (o.name not in loaded and known[o.name] != o.generation))
    if not new:
        return IntervalDecision(IntervalAction.KEEP, digest=kept_digest, settings_changed=settings_changed)
    renewed = {o.name for o in new}
    everything = [*(o.as_listed() for o in recorded.objects if o.name not in renewed), *new]
    return IntervalDecision(IntervalAction.ADD, to_load=new, digest=generations_digest(spec, interval_start, everything))


def gate_interval(spec: ImportSpec, *, decision: IntervalDecision, listed: Sequence[ObjectInfo],
                  markers: Sequence[ObjectInfo], recorded: RecordedInterval | None, now: datetime) -> Completeness:
    """Whether the interval a LOAD or ADD ``decision`` would write is complete (``complete_when``) at ``now``.

    The gate sees the interval as it would be after the load: a LOAD (GCS is the truth) its listed data
    files; an ADD to a sealed interval the listed files plus the recorded data objects no longer listed
    (their rows stay), those counted as updated when they were loaded (they were updated before; so an
    old load never holds a quiet period back). The markers are the listed ones plus those the ledger
    recorded (deleted ones too): an interval a marker closed once stays closed by it, so a later file
    reloads (open) or adds to (sealed) it as without a gate, once ``quiet_for`` and ``min_files`` hold
    for it. No gate, or a decision that loads nothing: complete.
    """
    gate = spec.complete_when
    if gate is None or decision.action not in (IntervalAction.LOAD, IntervalAction.ADD):
        return Completeness(complete=True)
    data = list(listed)
    if decision.action is IntervalAction.ADD and recorded is not None:
        names = {o.name for o in listed}
        data += [o.as_listed(updated=recorded.loaded_at) for o in recorded.objects if o.name not in names]
    closed = [*markers, *(o.as_listed() for o in (recorded.markers if recorded is not None else ()))]
    return decide_completeness(gate, data_files=data, markers=closed, now=now)


def markers_changed(listed: Sequence[ObjectInfo], recorded: RecordedInterval) -> bool:
    """Whether the listing holds a marker (name and generation) the interval's record lacks (an interval
    loaded before its marker arrived, or recorded by a pending-load recovery, which knows no markers)."""
    known = {(o.name, o.generation) for o in recorded.markers}
    return any((o.name, o.generation) not in known for o in listed)


@dataclass(frozen=True)
class IntervalLoadPlan:
    """What loading one interval takes: its URIs in batches and the ids of its jobs.

    ``append`` plans add objects to a sealed interval's raw table (WRITE_APPEND copy);
    other plans replace the raw table (WRITE_TRUNCATE copy).
    """

    interval_start: datetime
    interval_end: datetime
    objects: tuple[ObjectInfo, ...]
    #: Content digest of the interval after this load (equal exactly when the same object
    #: generations would be in BigQuery with the same settings: the data version).
    digest: str
    #: Identity of this load in the copy job's id: the objects loaded (for an append: nothing but
    #: the interval) plus the ledger's previous load of the interval, so a retry of the same load
    #: reattaches to its copy (never copies twice) while a later load of the same files gets new jobs.
    load_key: str
    raw_table_id: str
    #: Private to one worker attempt (``attempt_token``): concurrent attempts never share or drop
    #: each other's staging tables.
    staging_table_id: str
    attempt_token: str
    batches: tuple[tuple[str, ...], ...]
    append: bool = False
    #: Objects of ``objects`` no load job can read by URI (see :func:`unloadable_reason`): in no batch.
    unloadable: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        return self.raw_table_id.rsplit("__", 1)[1]

    @property
    def total_bytes(self) -> int:
        return sum(obj.size for obj in self.objects)

    def job_ids_by_name(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Object name -> the job that loaded it: its batch's load job (batches are bounded by request bytes
        too, so a batch may hold fewer than 10,000 URIs), or — when a retry reattached to the finished copy
        and only that id is known — the copy job. Objects in no batch (unloadable) get the last job id."""
        found = {uri.split("/", 3)[3]: job_ids[min(index, len(job_ids) - 1)]
                 for index, batch in enumerate(self.batches) for uri in batch}
        return {obj.name: found.get(obj.name, job_ids[-1]) for obj in self.objects}

    def load_job_base(self, batch_index: int, *, spec: ImportSpec) -> str:
        """Id (without attempt suffix) of this attempt's load job for one batch."""
        return f"gcs_import_{spec.name}_{self.suffix}_{self.load_key}_{self.attempt_token}_load{batch_index}"

    def copy_job_base(self, *, spec: ImportSpec) -> str:
        """Deterministic id of the copy into the raw table: shared by every attempt of this load."""
        return f"gcs_import_{spec.name}_{self.suffix}_{self.load_key}_{'append' if self.append else 'copy'}"


def job_id_for_object(index: int, job_ids: Sequence[str]) -> str:
    """The job that loaded the ``index``-th object of a plan: its batch's load job, or — when a retry
    reattached to the finished copy and only that id is known — the copy job."""
    return job_ids[min(index // MAX_URIS_PER_JOB, len(job_ids) - 1)]


def unloadable_reason(name: str) -> str | None:
    """Why a load job cannot read object ``name`` by its URI, or None when it can.

    BigQuery reads ``*`` in a source URI as a wildcard and has no escape for it ("Each URI can contain one
    '*' wildcard character", https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.source_uris),
    so ``a*.csv`` would also read ``a.csv`` and every other match; and it "converts multiple consecutive
    slashes into a single slash" (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage#gcs-uri),
    so ``x//y.csv`` would read the object ``x/y.csv``. No other load path reads GCS without the data passing
    through the worker, so such objects are never loaded: the run names them and they are never deleted.
    """
    if "*" in name:
        return "'*' in the name (BigQuery reads it as a wildcard and has no escape for it)"
    if "//" in name or name.startswith("/"):
        return "consecutive slashes in the name (BigQuery collapses them, so it would read another object)"
    return None


def generations_digest(spec: ImportSpec, interval_start: datetime, objects: Iterable[ObjectInfo]) -> str:
    """A hash of (spec, interval, object names and generations): equal iff the same data would be loaded."""
    hasher = hashlib.sha256()
    hasher.update(f"{spec.fingerprint()}|{interval_start.isoformat()}".encode())
    for obj in sorted(objects):
        hasher.update(f"|{obj.name}#{obj.generation}".encode())
    return hasher.hexdigest()[:16]


def uri_request_bytes(uri: str) -> int:
    """Bytes ``uri`` takes in a jobs.insert body: JSON-escaped as the client sends it, with its separator."""
    return len(json.dumps(uri)) + 2


def batch_uris(bucket: str, objects: Sequence[ObjectInfo], *, max_uris: int = MAX_URIS_PER_JOB,
               max_bytes: int = MAX_URI_BYTES_PER_JOB) -> tuple[tuple[str, ...], ...]:
    """``gs://`` URIs in batches of at most ``max_uris`` URIs and ``max_bytes`` request bytes (in order):
    N files of short names cost ceil(N / max_uris) jobs; long names cost more, never an oversized request."""
    batches: list[tuple[str, ...]] = []
    batch: list[str] = []
    size = 0
    for obj in objects:
        uri = f"gs://{bucket}/{obj.name}"
        cost = uri_request_bytes(uri)
        if batch and (len(batch) >= max_uris or size + cost > max_bytes):
            batches.append(tuple(batch))
            batch, size = [], 0
        batch.append(uri)
        size += cost
    if batch:
        batches.append(tuple(batch))
    return tuple(batches)


def plan_interval_load(
    spec: ImportSpec,
    *,
    interval_start: datetime,
    objects: Sequence[ObjectInfo],
    digest: str | None = None,
    previous_load: datetime | None = None,
    append: bool = False,
    attempt_token: str = "t0",
    max_uris: int = MAX_URIS_PER_JOB,
) -> IntervalLoadPlan:
    """Plan the jobs that load ``objects`` into the interval's raw table.

    ``digest`` is the interval's digest after the load (default: the digest of ``objects``),
    ``previous_load`` when the ledger last recorded a load of the interval, ``append`` whether
    the objects are added to a sealed interval, ``attempt_token`` a value unique to this worker
    attempt (it names the private staging table and the load jobs).
    """
    ordered = tuple(sorted(objects))
    objects_digest = generations_digest(spec, interval_start, ordered)
    previous = previous_load.isoformat() if previous_load else "never"
    # An append's key depends on the ledger state only, not on which objects it adds: at most one
    # append can ever succeed per recorded state (its copy id is fixed), so a crashed or concurrent
    # append is found and recorded instead of being appended a second time.
    identity = f"{spec.fingerprint()}|{interval_start.isoformat()}|append" if append else objects_digest
    load_key = hashlib.sha256(f"{identity}|{previous}".encode()).hexdigest()[:16]
    raw_table_id = spec.raw_table_id(interval_start)
    return IntervalLoadPlan(
        interval_start=interval_start,
        interval_end=spec.interval.next_start(interval_start),
        objects=ordered,
        digest=digest or objects_digest,
        load_key=load_key,
        raw_table_id=raw_table_id,
        staging_table_id=f"{raw_table_id}__staging_{load_key}_{attempt_token}",
        attempt_token=attempt_token,
        batches=batch_uris(spec.bucket_name, [o for o in ordered if unloadable_reason(o.name) is None],
                           max_uris=max_uris),
        append=append,
        unloadable=tuple(o.name for o in ordered if unloadable_reason(o.name) is not None),
    )


def overwrite_target(loaded: Iterable[SnapshotCandidate], *, allow_empty: bool = False) -> datetime | None:
    """The interval an Overwrite clean table must hold: the newest one ever loaded that has rows.

    Loading an older interval (a backfill) therefore never replaces a newer snapshot, and an
    interval without rows (a header-only file) never replaces a good snapshot unless
    ``allow_empty`` (the spec's ``allow_empty_snapshot``).
    """
    return max((c.interval_start for c in loaded if allow_empty or c.rows > 0), default=None)


@dataclass(frozen=True)
class RetentionPlan:
    """Objects retention will delete, and recorded objects it keeps because they changed since loading."""

    cutoff: datetime
    to_delete: tuple[LoadedObject, ...]
    changed_since_load: tuple[LoadedObject, ...]
    already_gone: tuple[LoadedObject, ...]
    #: Completeness markers of intervals whose every remaining loaded object this plan deletes (or found gone),
    #: still at their recorded generation: deleted after those objects (:meth:`markers_after`), never before.
    markers: tuple[LoadedObject, ...] = ()
    #: Recorded markers of such intervals no longer listed (recorded as deleted).
    markers_gone: tuple[LoadedObject, ...] = ()

    def markers_after(self, done: Iterable[LoadedObject]) -> tuple[LoadedObject, ...]:
        """The :attr:`markers` whose interval's planned deletes are all ``done`` (deleted, or gone): an object
        kept (changed since load) or not reached (a failed batch) keeps its interval's marker."""
        finished = {(o.interval_start, o.name, o.generation) for o in done}
        open_intervals = {o.interval_start for o in self.to_delete
                          if (o.interval_start, o.name, o.generation) not in finished}
        return tuple(m for m in self.markers if m.interval_start not in open_intervals)

    @property
    def bytes_to_free(self) -> int:
        return sum(obj.size for obj in self.to_delete)

    @property
    def intervals(self) -> list[datetime]:
        """The intervals retention deletes from: each is sealed in the ledger before any delete."""
        return sorted({obj.interval_start for obj in self.to_delete})

    def delete_batches(self, *, size: int | None = None) -> list[tuple[LoadedObject, ...]]:
        size = size or MAX_DELETES_PER_BATCH
        items = self.to_delete
        return [items[i : i + size] for i in range(0, len(items), size)]


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
    markers: list[LoadedObject] = []
    for obj in sorted(recorded, key=lambda o: (o.interval_start, o.name)):
        if obj.deleted or obj.skipped or not past_retention(spec, obj.interval_start, as_of=as_of):
            continue  # skipped: BigQuery never read it, so its data lives only in GCS
        if obj.marker:
            markers.append(obj)  # never data: decided once the interval's data is (retention_markers)
            continue
        current = current_generations.get(obj.name)
        if current is None:
            gone.append(obj)
        elif current != obj.generation:
            changed.append(obj)
        else:
            to_delete.append(obj)
    deletable, markers_gone = retention_markers(markers, to_delete=to_delete, changed=changed,
                                                current_generations=current_generations)
    return RetentionPlan(cutoff=cutoff, to_delete=tuple(to_delete), changed_since_load=tuple(changed),
                         already_gone=tuple(gone), markers=deletable, markers_gone=markers_gone)


def retention_markers(markers: Sequence[LoadedObject], *, to_delete: Sequence[LoadedObject],
                      changed: Sequence[LoadedObject], current_generations: Mapping[str, int],
                      ) -> tuple[tuple[LoadedObject, ...], tuple[LoadedObject, ...]]:
    """``(markers to delete after their interval's data, markers already gone)`` among an interval's recorded
    ``markers`` past retention.

    A marker goes only with its interval's last loaded file: its interval must be sealed already (an earlier
    retention deleted from it) or have objects in ``to_delete``, and no recorded loaded object of it may stay
    (one changed since its load is still present). A marker re-uploaded since (another generation) is kept.
    """
    deleting = {o.interval_start for o in to_delete}
    staying = {o.interval_start for o in changed}
    deletable: list[LoadedObject] = []
    gone: list[LoadedObject] = []
    for marker in markers:
        start = marker.interval_start
        if start in staying or not (marker.sealed or start in deleting):
            continue
        current = current_generations.get(marker.name)
        if current is None:
            gone.append(marker)
        elif current == marker.generation:
            deletable.append(marker)
    return tuple(deletable), tuple(gone)
