"""Issue 20's spec fields: notifications_subscription, complete_when, retention_action with its archive fields;
and the completeness gate's pure decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.test_spec import BASE
from worker.core.completeness import CompleteWhen, decide_completeness
from worker.core.durations import parse_duration
from worker.core.matching import match_objects
from worker.core.records import ObjectInfo
from worker.core.spec import ImportSpec, RetentionAction, SpecError

MARKER = r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS"
NOW = datetime(2024, 1, 5, 12, tzinfo=UTC)


def test_the_new_fields_round_trip_and_stay_out_of_the_load_digest() -> None:
    spec = ImportSpec(**BASE, notifications_subscription="projects/opensource-observer/subscriptions/passport-drops",
                      complete_when={"marker_match": MARKER, "quiet_for": "1h30m", "min_files": 2},
                      retention_action="archive", archive_bucket="oso-archive", archive_prefix="passport-archive/")
    assert spec.complete_when == CompleteWhen(marker_match=MARKER, quiet_for=timedelta(minutes=90), min_files=2)
    assert spec.retention_action is RetentionAction.archive
    assert spec.archive_target.uri("passport/2024-01-05/scores.parquet") == \
        "gs://oso-archive/passport-archive/passport/2024-01-05/scores.parquet"
    assert ImportSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["complete_when"]["quiet_for"] == "90m"
    assert spec.fingerprint() == "893019badbb1"  # BASE's digest: none of them changes what a load reads


@pytest.mark.parametrize(("change", "field", "hint"), [
    ({"notifications_subscription": "passport-drops"}, "notifications_subscription", "projects/PROJECT_ID/subscriptions/"),
    ({"notifications_subscription": "projects/p/subscriptions/s"}, "notifications_subscription", "full path"),
    ({"complete_when": {"marker_match": "_SUCCESS"}}, "complete_when", "no named group 'interval_timestamp'"),
    ({"complete_when": {"marker_match": "(?P<interval_timestamp>"}}, "complete_when", "does not compile"),
    ({"complete_when": {"quiet_for": "half an hour"}}, "complete_when", "'30m'"),
    ({"complete_when": {"quiet_for": "2w"}}, "complete_when", "'30m'"),
    ({"complete_when": {"quiet_for": "99999999999d"}}, "complete_when", "'30m'"),  # was an OverflowError
    ({"complete_when": {"min_files": 0}}, "complete_when", "1 or more"),
    ({"complete_when": {"quiet_for": "0m"}}, "complete_when", "'30m'"),
    ({"complete_when": {"min_file": 2}}, "complete_when", "unknown keys ['min_file']"),
    ({"complete_when": {}}, "complete_when", "is empty"),
    ({"retention_action": "move"}, "retention_action", "delete, archive"),
    ({"retention_action": "archive"}, "archive_bucket", "is missing"),
    ({"retention_action": "archive", "archive_bucket": "Bad_Bucket!"}, "archive_bucket", "GCS bucket name"),
    ({"archive_bucket": "oso-archive"}, "archive_bucket", "retention_action: archive"),
    ({"retention_action": "archive", "archive_bucket": "oso-dataset-transfer-bucket"}, "archive_prefix",
     "archived copies are never listed"),
    ({"retention_action": "archive", "archive_bucket": "oso-dataset-transfer-bucket", "archive_prefix": "passport/old/"},
     "archive_prefix", "outside passport/"),
])
def test_a_bad_new_field_is_named_with_its_fix(change: dict, field: str, hint: str) -> None:
    with pytest.raises(SpecError) as caught:
        ImportSpec(**{**BASE, **change})
    assert caught.value.field == field
    assert hint in str(caught.value)


def test_the_drop_bucket_itself_can_archive_under_another_prefix() -> None:
    spec = ImportSpec(**BASE, retention_action="archive", archive_bucket=BASE["bucket_name"], archive_prefix="archive/")
    assert spec.archive_target.object_name("passport/x") == "archive/passport/x"


@pytest.mark.parametrize(("text", "expected"), [("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)),
                                                ("2h", timedelta(hours=2)), ("1h30m", timedelta(minutes=90)),
                                                ("1d", timedelta(days=1))])
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "m30", "30 minutes", "1h30", "-5m", "1y", "1D", "99999999999d"])
def test_a_non_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_setting_accepts_only_its_units_and_zero_is_read() -> None:
    assert parse_duration("0m") == timedelta(0)
    assert parse_duration("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError):
        parse_duration("45s", units="mhdw")


def _file(name: str, minutes_old: float) -> ObjectInfo:
    return ObjectInfo(name=name, generation=1, size=1, updated=NOW - timedelta(minutes=minutes_old))


def test_every_condition_given_must_hold_and_each_missing_one_is_named() -> None:
    gate = CompleteWhen(marker_match=MARKER, quiet_for=timedelta(minutes=30), min_files=3)
    files = [_file("a", 12), _file("b", 40)]
    decision = decide_completeness(gate, data_files=files, markers=[], now=NOW)
    assert not decision.complete
    assert decision.reason == "marker missing; 2 of 3 files; newest file 12 minutes old, 30 minutes required"
    assert decision.recheck_at is None  # time alone will not complete it: no recheck is due
    done = decide_completeness(gate, data_files=[*files, _file("c", 31)], markers=[_file("m", 0)],
                               now=NOW + timedelta(minutes=18))
    assert done.complete and done.reason == ""


def test_a_quiet_period_alone_says_when_to_look_again() -> None:
    gate = CompleteWhen(quiet_for=timedelta(minutes=30))
    decision = decide_completeness(gate, data_files=[_file("a", 12)], markers=[], now=NOW)
    assert not decision.complete and decision.recheck_at == NOW + timedelta(minutes=18)
    assert decide_completeness(gate, data_files=[_file("a", 30)], markers=[], now=NOW).complete


def test_without_a_gate_an_interval_with_a_file_is_complete() -> None:
    assert decide_completeness(None, data_files=[_file("a", 0)], markers=[], now=NOW).complete
    assert not decide_completeness(None, data_files=[], markers=[], now=NOW).complete


def test_a_marker_is_never_data_even_when_file_match_matches_it() -> None:
    spec = ImportSpec(**{**BASE, "file_match": r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/[^/]+"},
                      complete_when={"marker_match": MARKER})
    names = ["passport/2024-01-05/scores.parquet", "passport/2024-01-05/_SUCCESS", "passport/2024-01-06/_SUCCESS"]
    result = match_objects(spec, [ObjectInfo(name=n, generation=1, size=1) for n in names])
    assert [o.name for objs in result.by_interval.values() for o in objs] == ["passport/2024-01-05/scores.parquet"]
    assert sorted(o.name for objs in result.markers_by_interval.values() for o in objs) == names[1:]


def test_an_alternation_branch_without_the_timestamp_is_unparseable_not_a_crash() -> None:
    spec = ImportSpec(**{**BASE, "file_match": r"(?:(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)|latest)/scores.parquet"})
    result = match_objects(spec, [ObjectInfo(name="passport/latest/scores.parquet", generation=1, size=1)])
    assert result.unparseable == ["passport/latest/scores.parquet"]


def test_a_narrowed_listing_also_covers_the_markers_of_the_requested_intervals() -> None:
    from worker.core.listing_ranges import plan_listing_ranges

    spec = ImportSpec(**BASE, complete_when={"marker_match": r"_done/(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)\.ok"})
    ranges = plan_listing_ranges(spec, interval_starts=[datetime(2024, 1, 5, tzinfo=UTC)])
    assert ranges.covers("passport/2024-01-05/scores.parquet") and ranges.covers("passport/_done/2024-01-05.ok")
    assert not ranges.covers("passport/_done/2024-01-06.ok") and not ranges.covers("passport/2024-01-06/scores.parquet")
    unsortable = ImportSpec(**BASE, complete_when={"marker_match": r"(?i)(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS"})
    assert plan_listing_ranges(unsortable, interval_starts=[datetime(2024, 1, 5, tzinfo=UTC)]).reason == \
        "complete_when.marker_match is case-insensitive"
