"""Cloud Storage notifications, pure: decoding a message, deciding what it asks for, and the sensor's tick fold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.factories.notifications_cursor import (
    MAX_WAITING,
    REMEMBERED_EVENTS,
    NotificationsCursor,
    WaitingInterval,
    collect_events,
    finish_tick,
)
from tests.unit.test_spec import BASE
from worker.core.completeness import Completeness
from worker.core.notifications import (
    EventOutcome,
    EventType,
    NotificationError,
    StorageEvent,
    decide_event,
    decode_notification,
)
from worker.core.retention_window import past_retention, retention_cutoff
from worker.core.spec import ImportSpec

NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)
MARKER = r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS"
SPEC = ImportSpec(**{**BASE, "start_date": "2024-01-01"})  # retention_days=10, daily, passport/DATE/scores.parquet
GATED = ImportSpec(**{**BASE, "start_date": "2024-01-01", "complete_when": {"marker_match": MARKER}})


def attributes(**overrides: str) -> dict[str, str]:
    """What GCS (and fake-gcs-server) sets on an OBJECT_FINALIZE of passport/2024-05-18/scores.parquet."""
    return {"bucketId": SPEC.bucket_name, "objectId": "passport/2024-05-18/scores.parquet",
            "objectGeneration": "1716000000000001", "eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1",
            "eventTime": "2024-05-18T10:00:00.123456Z", "notificationConfig": "projects/_/buckets/b/notificationConfigs/1",
            **overrides}


PAYLOAD = json.dumps({"kind": "storage#object", "name": "passport/2024-05-18/scores.parquet",
                      "bucket": SPEC.bucket_name, "generation": "1716000000000001", "size": "2048",
                      "updated": "2024-05-18T10:00:00.120Z"}).encode()


def event(name: str = "passport/2024-05-18/scores.parquet", *, kind: EventType = EventType.OBJECT_FINALIZE,
          generation: int = 7, bucket: str | None = None, overwritten_by: int | None = None) -> StorageEvent:
    return StorageEvent(event_type=kind, bucket=bucket or SPEC.bucket_name, name=name, generation=generation,
                        overwritten_by_generation=overwritten_by)


# --- decoding ---------------------------------------------------------------------------------------------

def test_a_finalize_notification_decodes_with_the_payloads_updated_time_and_size() -> None:
    decoded = decode_notification(attributes(), PAYLOAD)
    assert decoded == StorageEvent(
        event_type=EventType.OBJECT_FINALIZE, bucket=SPEC.bucket_name, name="passport/2024-05-18/scores.parquet",
        generation=1716000000000001, event_time=datetime(2024, 5, 18, 10, 0, 0, 123456, tzinfo=UTC),
        updated=datetime(2024, 5, 18, 10, 0, 0, 120000, tzinfo=UTC), size=2048)
    assert decoded.object.updated == decoded.updated


def test_an_overwrite_delete_carries_the_generation_that_replaced_it_and_no_payload_is_accepted() -> None:
    decoded = decode_notification(attributes(eventType="OBJECT_DELETE", overwrittenByGeneration="1716000000000009"), b"")
    assert decoded.event_type is EventType.OBJECT_DELETE
    assert decoded.overwritten_by_generation == 1716000000000009
    assert decoded.updated is None and decoded.size == 0  # payload format NONE: no object resource


@pytest.mark.parametrize(("attrs", "data", "words"), [
    ({"objectId": ""}, PAYLOAD, "objectId"),
    ({"bucketId": ""}, PAYLOAD, "bucketId"),
    ({"eventType": "OBJECT_MOVED"}, PAYLOAD, "OBJECT_MOVED"),
    ({"objectGeneration": "12a"}, PAYLOAD, "objectGeneration"),
    ({"overwrittenByGeneration": "-1"}, PAYLOAD, "overwrittenByGeneration"),
    ({"eventTime": "yesterday"}, PAYLOAD, "eventTime"),
    ({}, b"{not json", "--payload-format=json"),
])
def test_a_message_that_is_not_a_readable_notification_says_which_attribute(attrs, data, words) -> None:
    with pytest.raises(NotificationError, match=words.replace("-", r"\-")):
        decode_notification(attributes(**attrs), data)


def test_a_message_without_the_storage_attributes_is_not_a_notification() -> None:
    with pytest.raises(NotificationError, match=r"\['eventType', 'bucketId', 'objectId', 'objectGeneration'\]"):
        decode_notification({"origin": "someone else"}, b"hello")


def test_the_event_id_is_the_same_for_a_redelivery_and_differs_by_type_and_generation() -> None:
    assert event().event_id == decode_notification(attributes(objectGeneration="7"), PAYLOAD).event_id
    assert event().event_id != event(kind=EventType.OBJECT_DELETE).event_id
    assert event().event_id != event(generation=8).event_id


# --- deciding ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "happened", "outcome", "interval"), [
    (SPEC, event(), EventOutcome.REQUEST, "2024-05-18"),
    # a re-upload of a months-old file is requested: at any age
    (SPEC, event("passport/2024-01-03/scores.parquet"), EventOutcome.REQUEST, "2024-01-03"),
    # a delete inside retention: the open interval is reloaded without the file
    (SPEC, event(kind=EventType.OBJECT_DELETE), EventOutcome.REQUEST, "2024-05-18"),
    # retention_days=10 at 05-20T12:00: 05-10 ends 05-11T00:00, after the cutoff (inside); 05-09 ended before it
    (SPEC, event("passport/2024-05-10/scores.parquet", kind=EventType.OBJECT_DELETE), EventOutcome.REQUEST,
     "2024-05-10"),
    (SPEC, event("passport/2024-05-09/scores.parquet", kind=EventType.OBJECT_DELETE), EventOutcome.PAST_RETENTION,
     "2024-05-09"),
    (SPEC, event(kind=EventType.OBJECT_DELETE, overwritten_by=9), EventOutcome.OVERWRITTEN, "2024-05-18"),
    (SPEC, event(bucket="another-bucket"), EventOutcome.OTHER_BUCKET, None),
    (SPEC, event("passport/2024-05-18/scores.csv"), EventOutcome.NOT_MATCHING, None),
    (SPEC, event("elsewhere/2024-05-18/scores.parquet"), EventOutcome.NOT_MATCHING, None),
    (SPEC, event("passport/2024-13-45/scores.parquet"), EventOutcome.UNPARSEABLE, None),
    (SPEC, event("passport/2023-12-31/scores.parquet"), EventOutcome.BEFORE_START, "2023-12-31"),
    (SPEC, event(kind=EventType.OBJECT_METADATA_UPDATE), EventOutcome.OTHER_EVENT, None),
    (SPEC, event(kind=EventType.OBJECT_ARCHIVE), EventOutcome.OTHER_EVENT, None),
    # a marker completes its interval: its FINALIZE requests it; its delete changes no loaded data
    (GATED, event("passport/2024-05-18/_SUCCESS"), EventOutcome.REQUEST, "2024-05-18"),
    (GATED, event("passport/2024-05-18/_SUCCESS", kind=EventType.OBJECT_DELETE), EventOutcome.MARKER_DELETED,
     "2024-05-18"),
    (SPEC, event("passport/2024-05-18/_SUCCESS"), EventOutcome.NOT_MATCHING, None),  # no gate: not a marker
])
def test_what_each_event_asks_for(spec, happened, outcome, interval) -> None:
    decided = decide_event(spec, happened, now=NOW)
    assert decided.outcome is outcome
    assert (decided.interval_start.date().isoformat() if decided.interval_start else None) == interval
    assert decided.requests is (outcome is EventOutcome.REQUEST)
    assert decided.marker is (happened.name.endswith("_SUCCESS") and spec is GATED)


def test_the_retention_window_is_the_one_retention_deletes_by() -> None:
    # retention_days=10 at 2024-05-20T12:00: intervals that ended at or before 2024-05-10T12:00 are past it
    assert retention_cutoff(SPEC, as_of=NOW) == datetime(2024, 5, 10, 12, tzinfo=UTC)
    assert past_retention(SPEC, datetime(2024, 5, 9, tzinfo=UTC), as_of=NOW)  # ended 05-10T00:00
    assert not past_retention(SPEC, datetime(2024, 5, 10, tzinfo=UTC), as_of=NOW)  # ends 05-11T00:00
    assert past_retention(SPEC, datetime(2024, 5, 10, tzinfo=UTC), as_of=datetime(2024, 5, 21, tzinfo=UTC))


# --- the tick fold ----------------------------------------------------------------------------------------

def test_duplicates_in_one_tick_and_across_ticks_request_nothing_new() -> None:
    first = collect_events(SPEC, NotificationsCursor(), [event(), event(), None], now=NOW)
    assert first.outcomes == {"request": 1, "duplicate": 1, "undecodable": 1}
    requests, *_ = finish_tick(first, None)
    assert [r.interval_start.day for r in requests] == [18]
    again = collect_events(SPEC, NotificationsCursor(seen=first.seen), [event()], now=NOW)
    assert again.outcomes == {"duplicate": 1}
    assert finish_tick(again, None)[0] == []


def test_the_run_digest_depends_on_the_events_not_their_order() -> None:
    a = event("passport/2024-05-18/scores.parquet")
    b = event("passport/2024-05-18/scores.parquet", kind=EventType.OBJECT_DELETE, generation=6)
    one = finish_tick(collect_events(SPEC, NotificationsCursor(), [a, b], now=NOW), None)[0]
    other = finish_tick(collect_events(SPEC, NotificationsCursor(), [b, a], now=NOW), None)[0]
    alone = finish_tick(collect_events(SPEC, NotificationsCursor(), [a], now=NOW), None)[0]
    assert one == other and one[0].events == 2
    assert alone[0].digest != one[0].digest


def test_an_interval_that_has_not_ended_waits_until_its_end_then_is_requested_without_an_event() -> None:
    today = event("passport/2024-05-20/scores.parquet")
    tick = collect_events(SPEC, NotificationsCursor(), [today], now=NOW)
    assert tick.candidates == {}
    assert tick.waiting == {"2024-05-20T00:00:00+00:00": WaitingInterval([today.event_id], "2024-05-21T00:00:00+00:00")}
    cursor = NotificationsCursor(seen=tick.seen, waiting=tick.waiting)
    assert collect_events(SPEC, cursor, [], now=NOW + timedelta(hours=1)).candidates == {}
    later = collect_events(SPEC, cursor, [], now=datetime(2024, 5, 21, 0, 1, tzinfo=UTC))
    assert later.candidates == {datetime(2024, 5, 20, tzinfo=UTC): {today.event_id}}
    assert later.waiting == {}


def test_an_incomplete_interval_waits_with_its_reason_and_is_checked_again_when_asked_or_due() -> None:
    data = event()
    start = datetime(2024, 5, 18, tzinfo=UTC)
    tick = collect_events(GATED, NotificationsCursor(), [data], now=NOW)
    requests, waiting, reasons, dropped = finish_tick(tick, {start: Completeness(False, "marker missing")})
    assert (requests, reasons, dropped) == ([], {start: "marker missing"}, [])
    assert waiting == {start.isoformat(): WaitingInterval([data.event_id], None)}
    cursor = NotificationsCursor(seen=tick.seen, waiting=waiting)
    # no event, no due time: not looked at (no GCS listing for it)
    assert collect_events(GATED, cursor, [], now=NOW + timedelta(hours=5)).candidates == {}
    # the marker's event: checked with every event that asked
    marker = event("passport/2024-05-18/_SUCCESS")
    asked = collect_events(GATED, cursor, [marker], now=NOW)
    assert asked.candidates == {start: {data.event_id, marker.event_id}}
    (request,) = finish_tick(asked, {start: Completeness(True)})[0]
    assert request.events == 2
    # quiet_for: due at recheck_at, without an event
    quiet = finish_tick(tick, {start: Completeness(False, "newest file 3 minutes old, 30 required",
                                                   recheck_at=NOW + timedelta(minutes=27))})[1]
    due = NotificationsCursor(waiting=quiet)
    assert collect_events(GATED, due, [], now=NOW + timedelta(minutes=26)).candidates == {}
    assert collect_events(GATED, due, [], now=NOW + timedelta(minutes=27)).candidates == {start: {data.event_id}}


def test_the_cursor_stays_bounded_and_round_trips() -> None:
    many = [event(generation=g) for g in range(REMEMBERED_EVENTS + 10)]
    tick = collect_events(SPEC, NotificationsCursor(), many, now=NOW)
    assert len(tick.seen) == REMEMBERED_EVENTS and tick.seen[-1] == many[-1].event_id
    waiting = {datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i): {f"e{i}"} for i in range(MAX_WAITING + 2)}
    overflow = collect_events(SPEC, NotificationsCursor(), [], now=NOW)
    overflow.candidates = waiting
    _, kept, _, dropped = finish_tick(overflow, {s: Completeness(False, "marker missing") for s in waiting})
    assert len(kept) == MAX_WAITING and dropped == ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"]
    cursor = NotificationsCursor(seen=["a", "b"], waiting={"2024-05-18T00:00:00+00:00": WaitingInterval(["a"], None)},
                                 last_tick={"messages": 2})
    assert NotificationsCursor.from_json(cursor.to_json()) == cursor
    assert NotificationsCursor.from_json("{broken") == NotificationsCursor()
    assert NotificationsCursor.from_json('{"v": 0}') == NotificationsCursor()


def test_the_factory_adds_the_notifications_sensor_only_with_a_subscription() -> None:
    from orchestrator.factories import IntervalGCSAsset, interval_gcs_import_asset

    fields = {**BASE, "start_date": "2024-01-01", "file_match": r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores\.parquet"}
    without = {s.name for s in interval_gcs_import_asset(IntervalGCSAsset(**fields)).sensors}
    assert "passport_scores_gcs_notifications_sensor" not in without
    with_it = interval_gcs_import_asset(IntervalGCSAsset(
        **fields, notifications_subscription="projects/opensource-observer/subscriptions/passport-drops"))
    sensors = {s.name: s for s in with_it.sensors}
    assert set(sensors) == without | {"passport_scores_gcs_notifications_sensor"}
    assert sensors["passport_scores_gcs_notifications_sensor"].minimum_interval_seconds == 30  # Dagster's default
    assert "passport_scores_new_files_sensor" in sensors  # the listing sensor stays: it finds lost messages
