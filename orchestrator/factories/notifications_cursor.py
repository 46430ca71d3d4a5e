"""The notifications sensor's cursor and its pure tick logic (no I/O: decoded events in, intervals to request out).

A tick's events are decided one by one (:func:`worker.core.notifications.decide_event`); those that request
their interval are grouped by interval. Delivery is at least once, so:

- an event already handled (its :attr:`~worker.core.notifications.StorageEvent.event_id` is among the
  cursor's ``seen``, the last :data:`REMEMBERED_EVENTS` ids) is counted as a duplicate and requests nothing;
- the run key is the partition and a digest of the sorted event ids that caused the request, so a tick that
  is evaluated again with the same messages (its messages were redelivered because its acknowledgement was
  lost) requests the same keys, which Dagster does not launch twice.

An interval is *waiting* (kept in the cursor, with the ids of the events that asked for it) while it is not a
partition yet (it has not ended: Dagster's partitions end at the last complete interval) or while the
completeness gate says it is incomplete. A waiting interval is looked at again when a new event asks for it,
and without one once its ``recheck_at`` has passed (the interval's end; the end of a ``quiet_for`` period).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from worker.core.completeness import Completeness
from worker.core.intervals import as_utc, parse_iso
from worker.core.notifications import EventOutcome, StorageEvent, decide_event
from worker.core.spec import ImportSpec

CURSOR_VERSION = 1
#: Event ids remembered to drop duplicates (about 15 bytes each in the cursor: 75 kB at most). Pub/Sub
#: redelivers a message that was not acknowledged within its ack deadline, so duplicates arrive within a few
#: ticks; an older duplicate costs one run of an unchanged interval, which the worker finds up to date.
REMEMBERED_EVENTS = 5_000
#: Waiting intervals kept at most (the oldest are dropped beyond it, logged; the listing sensor still sees them).
MAX_WAITING = 1_000


@dataclass
class WaitingInterval:
    """An interval asked for but not requested yet: the events that asked, and when to look again."""

    event_ids: list[str]
    #: ISO instant after which a tick checks it again without a new event; ``None``: only when an event asks
    recheck_at: str | None = None


@dataclass
class NotificationsCursor:
    """JSON state kept between ticks (bounded: :data:`REMEMBERED_EVENTS`, :data:`MAX_WAITING`)."""

    #: ids of the events handled most recently, oldest first
    seen: list[str] = field(default_factory=list)
    #: interval start (ISO) -> the interval waiting to be requested
    waiting: dict[str, WaitingInterval] = field(default_factory=dict)
    #: the last tick's figures (messages, acknowledged, oldest_message_age_seconds, requested, outcomes ...)
    last_tick: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "seen": self.seen,
                "waiting": {k: [w.event_ids, w.recheck_at] for k, w in self.waiting.items()},
                "last_tick": self.last_tick,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> NotificationsCursor:
        """The cursor in ``text``; an empty, unreadable or older-version cursor starts afresh."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("v") != CURSOR_VERSION:
                return cls()
            return cls(
                seen=[str(s) for s in data.get("seen", [])],
                waiting={str(k): WaitingInterval([str(i) for i in v[0]], v[1]) for k, v in data.get("waiting", {}).items()},
                last_tick=dict(data.get("last_tick", {})),
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return cls()


@dataclass
class TickCollection:
    """One tick's events folded: the intervals to consider now, those that wait, and the counts."""

    #: interval start -> ids of the events that ask for it (new ones and, for a waiting interval, earlier ones)
    candidates: dict[datetime, set[str]] = field(default_factory=dict)
    #: intervals that keep waiting without being checked this tick
    waiting: dict[str, WaitingInterval] = field(default_factory=dict)
    #: events by :class:`EventOutcome` value, plus ``duplicate`` and ``undecodable``
    outcomes: Counter[str] = field(default_factory=Counter)
    seen: list[str] = field(default_factory=list)


def collect_events(spec: ImportSpec, cursor: NotificationsCursor, events: Sequence[StorageEvent | None], *,
                   now: datetime) -> TickCollection:
    """Decide this tick's ``events`` (``None`` for a message that did not decode) and merge the waiting intervals.

    Candidates are the intervals an event asks for and the waiting intervals whose ``recheck_at`` has passed;
    an interval that has not ended yet is never a candidate: it waits until its end.
    """
    now = as_utc(now)
    seen = list(cursor.seen)
    known = set(seen)
    asked: dict[datetime, set[str]] = {}
    outcomes: Counter[str] = Counter()
    for event in events:
        if event is None:
            outcomes["undecodable"] += 1
            continue
        if event.event_id in known:
            outcomes["duplicate"] += 1
            continue
        known.add(event.event_id)
        seen.append(event.event_id)
        decision = decide_event(spec, event, now=now)
        outcomes[decision.outcome.value] += 1
        if decision.outcome is EventOutcome.REQUEST and decision.interval_start is not None:
            asked.setdefault(decision.interval_start, set()).add(event.event_id)
    result = TickCollection(outcomes=outcomes, seen=seen[-REMEMBERED_EVENTS:])
    for key, slot in cursor.waiting.items():
        start = parse_iso(key)
        due = slot.recheck_at is not None and parse_iso(slot.recheck_at) <= now
        if start in asked or due:
            asked.setdefault(start, set()).update(slot.event_ids)
        else:
            result.waiting[key] = slot
    for start, ids in asked.items():
        end = spec.interval.next_start(start)
        if end > now:  # not a partition until it has ended
            result.waiting[start.isoformat()] = WaitingInterval(sorted(ids), end.isoformat())
        else:
            result.candidates[start] = ids
    return result


@dataclass(frozen=True)
class IntervalRequest:
    """An interval to request: its start, the run key's digest and how many events asked for it."""

    interval_start: datetime
    digest: str
    events: int


def finish_tick(collection: TickCollection, completeness: Mapping[datetime, Completeness] | None,
                ) -> tuple[list[IntervalRequest], dict[str, WaitingInterval], dict[datetime, str], list[str]]:
    """Split the candidates by ``completeness`` (``None``: no gate, all are requested).

    Returns the intervals to request (oldest first), the waiting intervals (bounded by :data:`MAX_WAITING`,
    newest kept), each incomplete interval's reason, and the interval starts (ISO) dropped from waiting.
    """
    requests: list[IntervalRequest] = []
    waiting = dict(collection.waiting)
    reasons: dict[datetime, str] = {}
    for start in sorted(collection.candidates):
        ids = sorted(collection.candidates[start])
        verdict = completeness.get(start) if completeness is not None else None
        if verdict is not None and not verdict.complete:
            recheck = verdict.recheck_at.isoformat() if verdict.recheck_at is not None else None
            waiting[start.isoformat()] = WaitingInterval(ids, recheck)
            reasons[start] = verdict.reason
            continue
        digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:20]
        requests.append(IntervalRequest(interval_start=start, digest=digest, events=len(ids)))
    dropped: list[str] = []
    if len(waiting) > MAX_WAITING:
        dropped = sorted(waiting, key=parse_iso)[: len(waiting) - MAX_WAITING]
        for key in dropped:
            waiting.pop(key)
    return requests, waiting, reasons, dropped
