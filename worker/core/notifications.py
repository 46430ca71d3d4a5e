"""Cloud Storage notifications through Pub/Sub (spec field ``notifications_subscription``), pure.

The orchestrator's notifications sensor pulls the subscription; this module holds what needs no I/O:
the subscription path's form, the decoding of one notification into a typed :class:`StorageEvent`,
and the decision what that event asks for (:func:`decide_event`: a run of its interval, or nothing and why).
References:
https://cloud.google.com/storage/docs/pubsub-notifications (attributes, event types, payload),
https://cloud.google.com/storage/docs/json_api/v1/objects#resource (the ``JSON_API_V1`` payload),
https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions (resource names).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from worker.core.intervals import as_utc, parse_iso
from worker.core.records import ObjectInfo

if TYPE_CHECKING:
    from worker.core.spec import ImportSpec

__all__ = [
    "EventDecision",
    "EventOutcome",
    "EventType",
    "NotificationError",
    "StorageEvent",
    "SubscriptionPath",
    "decide_event",
    "decode_notification",
    "parse_subscription_path",
]

# Project ids (6-30 lowercase letters, digits, dashes; an optional `domain:` prefix) and subscription ids
# ("3 to 255 characters, start with a letter, letters, numbers, dashes, periods, underscores, tildes, percent
# signs or plus signs; not starting with goog").
_SUBSCRIPTION_PATH_RE = re.compile(
    r"^projects/(?P<project>(?:[a-z][a-z0-9.\-]*[a-z0-9]:)?[a-z][a-z0-9\-]{4,28}[a-z0-9])"
    r"/subscriptions/(?P<subscription>[A-Za-z][A-Za-z0-9\-_.~+%]{2,254})$"
)


@dataclass(frozen=True)
class SubscriptionPath:
    """A Pub/Sub subscription's full resource name, split."""

    project: str
    subscription: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscription}"


def parse_subscription_path(text: str) -> SubscriptionPath:
    """``projects/{project}/subscriptions/{name}`` split into its parts.

    Raises:
        ValueError: not such a path (the message says what the form is).
    """
    found = _SUBSCRIPTION_PATH_RE.match(text) if isinstance(text, str) else None
    if found is None or found.group("subscription").lower().startswith("goog"):
        raise ValueError(f"{text!r} is not a subscription path: use projects/PROJECT_ID/subscriptions/SUBSCRIPTION_ID")
    return SubscriptionPath(project=found.group("project"), subscription=found.group("subscription"))


class NotificationError(ValueError):
    """A Pub/Sub message that is not a Cloud Storage notification this sensor can read (the message says why)."""


class EventType(enum.Enum):
    """``eventType`` of a Cloud Storage notification (the set-up subscribes to the first two only)."""

    OBJECT_FINALIZE = "OBJECT_FINALIZE"
    OBJECT_DELETE = "OBJECT_DELETE"
    OBJECT_METADATA_UPDATE = "OBJECT_METADATA_UPDATE"
    OBJECT_ARCHIVE = "OBJECT_ARCHIVE"


@dataclass(frozen=True, kw_only=True)
class StorageEvent:
    """One Cloud Storage notification, decoded.

    ``overwritten_by_generation`` is set on the ``OBJECT_DELETE`` (or ``OBJECT_ARCHIVE``) that an upload of
    a new generation of the same name caused; its ``OBJECT_FINALIZE`` is a separate notification.
    """

    event_type: EventType
    bucket: str
    name: str
    generation: int
    event_time: datetime | None = None
    #: The object's ``updated`` time from the payload (``None`` when the payload had none).
    updated: datetime | None = None
    size: int = 0
    overwritten_by_generation: int | None = None

    @property
    def object(self) -> ObjectInfo:
        """The object as a listing would give it (for the worker's matching)."""
        return ObjectInfo(name=self.name, generation=self.generation, size=self.size, updated=self.updated)

    @property
    def event_id(self) -> str:
        """A short digest of bucket, name, generation and event type: the same for a redelivered message."""
        text = f"{self.event_type.value}|{self.bucket}|{self.name}#{self.generation}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_notification(attributes: Mapping[str, str], data: bytes | str | None) -> StorageEvent:
    """The :class:`StorageEvent` of a Pub/Sub message's ``attributes`` and ``data``.

    The attributes ``eventType``, ``bucketId``, ``objectId`` and ``objectGeneration`` are required;
    ``eventTime`` and ``overwrittenByGeneration`` are read when present. ``data`` is the ``JSON_API_V1``
    payload (the object resource): its ``updated`` and ``size`` are read when it parses; a payload of
    ``NONE`` (empty data) gives an event without them.

    Raises:
        NotificationError: a required attribute is missing, the event type is unknown, or a generation or
            time does not parse (the message names the attribute).
    """
    missing = [key for key in ("eventType", "bucketId", "objectId", "objectGeneration") if not attributes.get(key)]
    if missing:
        raise NotificationError(f"not a Cloud Storage notification: attributes {missing} missing "
                                f"(the topic should carry only the bucket's notifications)")
    try:
        event_type = EventType(attributes["eventType"])
    except ValueError:
        raise NotificationError(f"eventType {attributes['eventType']!r} is not a Cloud Storage event type") from None
    resource = _payload(data)
    return StorageEvent(
        event_type=event_type,
        bucket=attributes["bucketId"],
        name=attributes["objectId"],
        generation=_generation(attributes, "objectGeneration"),
        event_time=_time(attributes.get("eventTime"), "eventTime"),
        updated=_time(resource.get("updated"), "updated (payload)"),
        size=_size(resource.get("size")),
        overwritten_by_generation=(_generation(attributes, "overwrittenByGeneration")
                                   if attributes.get("overwrittenByGeneration") else None),
    )


def _payload(data: bytes | str | None) -> dict:
    if not data:
        return {}
    try:
        resource = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise NotificationError("the payload is not JSON: create the notification with --payload-format=json") from None
    return resource if isinstance(resource, dict) else {}


def _generation(attributes: Mapping[str, str], key: str) -> int:
    text = attributes[key]
    if not text.isascii() or not text.isdigit():
        raise NotificationError(f"{key} {text!r} is not a generation number")
    return int(text)


def _time(text: object, key: str) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        return parse_iso(str(text))
    except ValueError:
        raise NotificationError(f"{key} {text!r} is not an RFC 3339 time") from None


def _size(value: object) -> int:
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


class EventOutcome(enum.Enum):
    """What one event asks of the sensor."""

    #: a run of its interval (a new or changed data file, a marker completing it, a file deleted inside retention)
    REQUEST = "request"
    #: the delete an overwrite caused (the new generation's OBJECT_FINALIZE requests the interval)
    OVERWRITTEN = "overwritten"
    #: a delete in an interval past retention (retention's own delete)
    PAST_RETENTION = "past_retention"
    #: another bucket's object
    OTHER_BUCKET = "other_bucket"
    #: a name neither ``file_match`` nor the completeness marker matches
    NOT_MATCHING = "not_matching"
    #: a matching name whose timestamp does not parse (the worker skips it too)
    UNPARSEABLE = "unparseable"
    #: an interval before the spec's start (no partition)
    BEFORE_START = "before_start"
    #: a marker's delete: loaded data does not change
    MARKER_DELETED = "marker_deleted"
    #: an event type the set-up does not subscribe to (metadata update, archive)
    OTHER_EVENT = "other_event"


@dataclass(frozen=True)
class EventDecision:
    """:func:`decide_event`'s answer: the outcome and, when the name matched, its interval."""

    outcome: EventOutcome
    interval_start: datetime | None = None
    #: the object is a completeness marker (``complete_when.marker_match``), not data
    marker: bool = False

    @property
    def requests(self) -> bool:
        return self.outcome is EventOutcome.REQUEST


def decide_event(spec: ImportSpec, event: StorageEvent, *, now: datetime) -> EventDecision:
    """Whether ``event`` requests a run of its interval, decided as the worker matches names.

    - ``OBJECT_FINALIZE`` of a data file or of a completeness marker requests its interval, at any age
      (a re-upload of a month-old file is seen);
    - ``OBJECT_DELETE`` of a data file requests its interval while it is inside retention (an open interval
      is reloaded without the file; a sealed one stays as loaded); nothing when an overwrite caused the
      delete (``overwrittenByGeneration``), nor past retention (retention's own delete), nor for a marker;
    - other buckets, names outside ``path_base/`` + ``file_match`` and the marker, unparseable timestamps,
      intervals before the spec's start and other event types request nothing.
    """
    # imported here: worker.core.spec imports this module (for the path parser) before matching can import spec
    from worker.core.matching import match_objects
    from worker.core.retention_window import past_retention

    if event.event_type not in (EventType.OBJECT_FINALIZE, EventType.OBJECT_DELETE):
        return EventDecision(EventOutcome.OTHER_EVENT)
    if event.bucket != spec.bucket_name:
        return EventDecision(EventOutcome.OTHER_BUCKET)
    matched = match_objects(spec, [event.object])
    if matched.unparseable:
        return EventDecision(EventOutcome.UNPARSEABLE)
    marker = bool(matched.markers_by_interval)
    starts = list(matched.markers_by_interval or matched.by_interval)
    if not starts:
        return EventDecision(EventOutcome.NOT_MATCHING)
    start = starts[0]
    if start < spec.effective_start:
        return EventDecision(EventOutcome.BEFORE_START, start, marker)
    if event.event_type is EventType.OBJECT_FINALIZE:
        return EventDecision(EventOutcome.REQUEST, start, marker)
    if marker:
        return EventDecision(EventOutcome.MARKER_DELETED, start, marker)
    if event.overwritten_by_generation is not None:
        return EventDecision(EventOutcome.OVERWRITTEN, start, marker)
    if past_retention(spec, start, as_of=as_utc(now)):
        return EventDecision(EventOutcome.PAST_RETENTION, start, marker)
    return EventDecision(EventOutcome.REQUEST, start, marker)
