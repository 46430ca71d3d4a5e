"""The new-files sensor's cursor and its pure tick logic (no I/O: objects in, partitions to request out).

A *pass* lists the objects under ``path_base/`` in name order (GCS always lists in
name order), possibly over several ticks when it is longer than the per-tick bound,
and folds each matched object's name and generation into a digest per interval.
An interval whose digest differs from the one recorded when it was last requested
(new file, changed file, re-upload: a new generation) is requested again.

Two layouts:

- *sortable*: ``file_match`` starts with the ``interval_timestamp`` group and the
  timestamp format is fixed-width, most significant field first (``%Y-%m-%d``,
  ``%Y-%m-%dT%H``, ``%Y%m%d`` ...), so name order is time order. A pass then starts
  at ``start_offset = path_base/<timestamp of an interval start>``: the interval
  containing the earlier of (a) the start of the interval right after the newest one
  ever requested (new intervals are always found, however far behind ``now`` the
  newest one is) and (b) ``now - lookback`` (a re-upload into an interval that began
  within the look-back of ``now`` is noticed), never before the spec's effective
  start; with nothing requested yet, the effective start. A tick lists only recent
  objects, not the whole prefix, and a re-upload into an older interval is not
  noticed (it needs a run of that partition). While a long pass is cut by the
  bound, intervals older than the newest one seen are already complete and are
  requested at once.
- otherwise every pass lists the whole prefix, resuming across ticks with
  ``start_offset`` at the last name listed; requests are made when the pass ends.

:func:`parse_lookback` reads the look-back setting (``"1d"``, ``"36h"``, ``"30m"``, ...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from worker.core.completeness import Completeness
from worker.core.durations import parse_duration
from worker.core.intervals import as_utc, parse_iso
from worker.core.listing_ranges import directives_in_time_order
from worker.core.matching import match_objects
from worker.core.records import ObjectInfo
from worker.core.spec import TIMESTAMP_GROUP, ImportSpec

CURSOR_VERSION = 1


@dataclass
class IntervalFold:
    """An interval's fold so far in the pass in progress (names and generations seen, not yet decided)."""

    digest: str = ""
    max_generation: int = 0
    objects: int = 0

    def add(self, obj: ObjectInfo) -> None:
        self.digest = hashlib.sha256(f"{self.digest}|{obj.name}#{obj.generation}".encode()).hexdigest()[:20]
        self.max_generation = max(self.max_generation, int(obj.generation))
        self.objects += 1


@dataclass(frozen=True)
class WaitingInterval:
    """A changed interval the completeness gate found incomplete: what its request will carry, and when time
    alone may complete it (``quiet_for``: ISO; ``None``: recheck every tick)."""

    digest: str
    max_generation: int
    objects: int
    recheck_at: str | None = None


@dataclass
class NewFilesCursor:
    """JSON state kept between ticks (bounded: see :func:`fold_tick` for pruning)."""

    #: interval start (ISO) -> digest of its objects when it was last requested
    digests: dict[str, str] = field(default_factory=dict)
    #: newest interval start (ISO) ever requested; a sortable pass starts no later than the interval after it
    newest: str | None = None
    #: a pass in progress: the last name listed (the next tick resumes after it)
    scan_after: str | None = None
    #: a pass in progress: the offset it began at (``None``: the whole prefix)
    scan_from: str | None = None
    #: a pass in progress: intervals folded so far and not yet decided
    pending: dict[str, IntervalFold] = field(default_factory=dict)
    #: ``complete_when`` only: changed intervals the gate found incomplete, not requested yet, rechecked on later
    #: ticks (:func:`gate_candidates`); written only when not empty, so a cursor without it reads as before
    waiting: dict[str, WaitingInterval] = field(default_factory=dict)

    def to_json(self) -> str:
        data: dict = {
            "v": CURSOR_VERSION,
            "digests": self.digests,
            "newest": self.newest,
            "scan_after": self.scan_after,
            "scan_from": self.scan_from,
            "pending": {k: [p.digest, p.max_generation, p.objects] for k, p in self.pending.items()},
        }
        if self.waiting:
            data["waiting"] = {k: [w.digest, w.max_generation, w.objects, w.recheck_at]
                               for k, w in self.waiting.items()}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> NewFilesCursor:
        """The cursor in ``text``; an empty, unreadable or older-version cursor starts afresh."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("v") != CURSOR_VERSION:
                return cls()
            return cls(
                digests={str(k): str(v) for k, v in data.get("digests", {}).items()},
                newest=data.get("newest"),
                scan_after=data.get("scan_after"),
                scan_from=data.get("scan_from"),
                pending={str(k): IntervalFold(str(v[0]), int(v[1]), int(v[2])) for k, v in data.get("pending", {}).items()},
                waiting={str(k): WaitingInterval(str(v[0]), int(v[1]), int(v[2]), None if v[3] is None else str(v[3]))
                         for k, v in data.get("waiting", {}).items()},
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return cls()


@dataclass(frozen=True)
class IntervalChange:
    """An interval to (re)load: its files appeared or changed since it was last requested."""

    interval_start: datetime
    digest: str
    max_generation: int
    objects: int


@dataclass(frozen=True)
class ListingPlan:
    """Where this tick's listing starts."""

    #: ``start_offset`` for ``list_blobs`` (inclusive); ``None`` lists from the prefix
    start_offset: str | None
    #: names up to and including this one were folded by an earlier tick; skip them
    skip_through: str | None
    #: the offset the pass began at (kept in the cursor until the pass ends)
    scan_from: str | None


def parse_lookback(text: str) -> timedelta:
    """``"1d"``, ``"36h"``, ``"30m"``, ``"2w"``, ``"1d12h"`` as a :class:`~datetime.timedelta`
    (:func:`worker.core.durations.parse_duration` in minutes, hours, days and weeks; ``"0m"`` is a zero look-back).

    Raises:
        ValueError: ``text`` is not such a duration.
    """
    return parse_duration(text, units="mhdw")


def is_sortable(spec: ImportSpec) -> bool:
    """Whether object names sort in interval order (so ``start_offset`` can skip old intervals)."""
    pattern = spec.file_match.removeprefix("^")
    if not pattern.startswith(f"(?P<{TIMESTAMP_GROUP}>"):
        return False
    return directives_in_time_order(spec.effective_timestamp_format)


def offset_for(spec: ImportSpec, interval_start: datetime) -> str:
    """The smallest object name of a sortable layout whose interval is ``interval_start`` or later."""
    return spec.object_prefix + as_utc(interval_start).strftime(spec.effective_timestamp_format)


def plan_listing(spec: ImportSpec, cursor: NewFilesCursor, *, now: datetime, lookback: timedelta) -> ListingPlan:
    """Where to start listing this tick: resume a pass in progress, or begin a new one.

    A new pass of a sortable layout starts at the interval containing the earlier of the start
    of the interval after ``cursor.newest`` and ``now - lookback``, never before the spec's
    effective start; with no ``newest`` yet, at the effective start. Other layouts list the
    whole prefix.
    """
    if cursor.scan_after is not None:
        return ListingPlan(start_offset=cursor.scan_after, skip_through=cursor.scan_after, scan_from=cursor.scan_from)
    if not is_sortable(spec):
        return ListingPlan(start_offset=None, skip_through=None, scan_from=None)
    first = spec.effective_start
    if cursor.newest is not None:
        after_newest = spec.interval.next_start(parse_iso(cursor.newest))
        try:
            recent = spec.interval.floor(as_utc(now) - lookback)
        except OverflowError:  # a look-back longer than the calendar: from the effective start
            recent = first
        first = max(first, min(after_newest, recent))
    offset = offset_for(spec, first)
    return ListingPlan(start_offset=offset, skip_through=None, scan_from=offset)


def fold_tick(
    spec: ImportSpec,
    cursor: NewFilesCursor,
    plan: ListingPlan,
    objects: Sequence[ObjectInfo],
    *,
    truncated: bool,
    now: datetime,
) -> tuple[list[IntervalChange], NewFilesCursor, list[str]]:
    """Fold one tick's listing into the cursor.

    ``objects`` are the names listed this tick in name order (at most the bound);
    ``truncated`` says the listing stopped at the bound with more names after it.
    Returns the intervals to request, the next cursor, and unparseable names seen.

    An interval that is not a partition yet (it has not ended, or is before the
    spec's start) is neither requested nor recorded, so it is requested once it exists.
    """
    sortable = is_sortable(spec)
    now = as_utc(now)
    fresh = [o for o in objects if plan.skip_through is None or o.name > plan.skip_through]
    result = match_objects(spec, fresh)
    pending = {k: IntervalFold(p.digest, p.max_generation, p.objects) for k, p in cursor.pending.items()}
    for start in sorted(result.by_interval):
        if start < spec.effective_start:
            continue
        slot = pending.setdefault(start.isoformat(), IntervalFold())
        for obj in result.by_interval[start]:  # match_objects sorts each interval by name
            slot.add(obj)

    digests = dict(cursor.digests)
    newest = cursor.newest
    if truncated:
        last_name = objects[-1].name if objects else plan.skip_through
        if sortable and pending:
            newest_pending = max(pending, key=parse_iso)
            decided = [k for k in pending if parse_iso(k) < parse_iso(newest_pending)]
        else:
            decided = []
        next_cursor = NewFilesCursor(digests=digests, newest=newest, scan_after=last_name, scan_from=plan.scan_from,
                                     waiting=dict(cursor.waiting))
    else:
        decided = list(pending)
        if sortable:
            # keep only the intervals this pass covered: the cursor stays as small as the look-back
            floor = None
            if plan.scan_from is not None:
                floor_text = plan.scan_from[len(spec.object_prefix):]
                try:
                    floor = spec.interval.floor(datetime.strptime(floor_text, spec.effective_timestamp_format))
                except ValueError:
                    floor = None
            if floor is not None:
                digests = {k: v for k, v in digests.items() if parse_iso(k) >= floor}
        else:
            # a full pass saw every interval that still has files; forget the others
            digests = {k: v for k, v in digests.items() if k in pending}
        next_cursor = NewFilesCursor(digests=digests, newest=newest, waiting=dict(cursor.waiting))

    changes: list[IntervalChange] = []
    for key in sorted(decided, key=parse_iso):
        slot = pending.pop(key)
        start = parse_iso(key)
        if spec.interval.next_start(start) > now:
            if not truncated:
                digests.pop(key, None)  # not a partition yet: decide again once it has ended
            continue
        if digests.get(key) != slot.digest:
            changes.append(IntervalChange(start, slot.digest, slot.max_generation, slot.objects))
        digests[key] = slot.digest
        if newest is None or start > parse_iso(newest):
            newest = key
    next_cursor.digests = digests
    next_cursor.newest = newest
    next_cursor.pending = pending if truncated else {}
    return changes, next_cursor, result.unparseable


#: Waiting intervals a cursor keeps at most (the newest): one that never completes must not grow it forever.
MAX_WAITING = 500


def gate_candidates(cursor: NewFilesCursor, changes: Sequence[IntervalChange], *, now: datetime) -> list[IntervalChange]:
    """The intervals the completeness gate decides this tick: this tick's ``changes``, plus the cursor's waiting
    intervals that are due (waiting on a marker or a file count: every tick; on ``quiet_for`` alone: once its
    ``recheck_at`` passed, since no event arrives when a quiet period ends), in interval order."""
    now = as_utc(now)
    changed = {c.interval_start for c in changes}
    due = [IntervalChange(parse_iso(key), w.digest, w.max_generation, w.objects)
           for key, w in cursor.waiting.items()
           if parse_iso(key) not in changed and (w.recheck_at is None or parse_iso(w.recheck_at) <= now)]
    return sorted([*changes, *due], key=lambda c: c.interval_start)


def settle_gate(cursor: NewFilesCursor, candidates: Sequence[IntervalChange],
                verdicts: Mapping[datetime, Completeness]) -> tuple[list[IntervalChange], NewFilesCursor]:
    """``(the complete candidates, to request; the cursor with the incomplete ones waiting)``.

    A requested interval leaves the waiting set; an incomplete one enters it (or is updated: a new file changes
    its digest). A candidate without a verdict stays as it was (requested as without a gate when it was a
    change: the gate is asked for every candidate, so this is a caller's slip, not a silent wait). At most
    :data:`MAX_WAITING` intervals wait (the newest kept).
    """
    waiting = dict(cursor.waiting)
    complete: list[IntervalChange] = []
    for change in candidates:
        key = change.interval_start.isoformat()
        verdict = verdicts.get(change.interval_start)
        if verdict is None or verdict.complete:
            waiting.pop(key, None)
            complete.append(change)
            continue
        recheck = verdict.recheck_at.isoformat() if verdict.recheck_at is not None else None
        waiting[key] = WaitingInterval(change.digest, change.max_generation, change.objects, recheck)
    if len(waiting) > MAX_WAITING:
        waiting = dict(sorted(waiting.items(), key=lambda item: parse_iso(item[0]))[-MAX_WAITING:])
    return complete, dataclasses.replace(cursor, waiting=waiting)
