"""The new-files sensor's cursor logic, without I/O: objects in, intervals to request out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode
from orchestrator.factories.new_files_cursor import (
    ListingPlan,
    NewFilesCursor,
    fold_tick,
    is_sortable,
    offset_for,
    plan_listing,
    step_back,
)
from worker.matching import ObjectInfo

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def spec(**overrides) -> IntervalGCSAsset:
    fields = dict(
        key_prefix="gitcoin", name="passport_scores", project_id="opensource-observer",
        bucket_name="oso-dataset-transfer-bucket", path_base="passport",
        file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet",
        destination_table="passport_scores", raw_dataset_name="oso_raw_sources", clean_dataset_name="gitcoin",
        interval=Interval.Daily, mode=SourceMode.Overwrite, retention_days=10, format="PARQUET",
        start_date="2024-05-01",
    )
    fields.update(overrides)
    return IntervalGCSAsset(**fields)


def obj(day: str, generation: int = 1, name: str = "scores.parquet") -> ObjectInfo:
    return ObjectInfo(name=f"passport/{day}/{name}", generation=generation, size=10)


def tick(s, cursor, objects, *, bound=10_000, lookback=7, now=NOW):
    """One tick as the sensor runs it: plan, list (sorted, from the offset, bounded), fold."""
    plan = plan_listing(s, cursor, lookback_intervals=lookback)
    listed = sorted(o for o in objects if plan.start_offset is None or o.name >= plan.start_offset)
    listed = [o for o in listed if plan.skip_through is None or o.name > plan.skip_through]
    truncated = len(listed) > bound
    changes, nxt, unparseable = fold_tick(s, cursor, plan, listed[:bound], truncated=truncated, now=now)
    days = [c.interval_start.strftime("%Y-%m-%d") for c in changes]
    # the cursor always survives its JSON round trip
    assert NewFilesCursor.from_json(nxt.to_json()).to_json() == nxt.to_json()
    return days, NewFilesCursor.from_json(nxt.to_json()), plan, unparseable


def test_sortable_layouts() -> None:
    assert is_sortable(spec())
    assert is_sortable(spec(file_match=r"^(?P<interval_timestamp>\d{8})\.csv", timestamp_format="%Y%m%d"))
    assert is_sortable(spec(interval=Interval.Hourly, file_match=r"(?P<interval_timestamp>[\dT-]+)/x.csv"))
    # timestamp not first, or not most-significant-first: names do not sort by time
    assert not is_sortable(spec(file_match=r"scores_(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.parquet"))
    assert not is_sortable(spec(file_match=r"(?P<interval_timestamp>\d\d-\d\d-\d{4})/s.csv", timestamp_format="%d-%m-%Y"))


def test_step_back_and_offsets() -> None:
    monday = datetime(2024, 1, 8, tzinfo=UTC)
    assert step_back(Interval.Weekly, monday, 2) == datetime(2023, 12, 25, tzinfo=UTC)
    assert step_back(Interval.Monthly, datetime(2024, 3, 1, tzinfo=UTC), 3) == datetime(2023, 12, 1, tzinfo=UTC)
    assert step_back(Interval.Hourly, datetime(2024, 1, 1, 1, tzinfo=UTC), 2) == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert offset_for(spec(), datetime(2024, 5, 3, tzinfo=UTC)) == "passport/2024-05-03"
    fresh = plan_listing(spec(), NewFilesCursor(), lookback_intervals=3)
    assert fresh == ListingPlan(start_offset="passport/2024-05-01", skip_through=None, scan_from="passport/2024-05-01")
    later = plan_listing(spec(), NewFilesCursor(newest="2024-05-20T00:00:00+00:00"), lookback_intervals=3)
    assert later.start_offset == "passport/2024-05-17"
    unsorted = spec(file_match=r"scores_(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.parquet")
    assert plan_listing(unsorted, NewFilesCursor(newest="2024-05-20T00:00:00+00:00"), lookback_intervals=3).start_offset is None


def test_new_unchanged_reuploaded_and_new_interval() -> None:
    s = spec()
    files = [obj("2024-05-01"), obj("2024-05-02"), obj("2024-05-03"), obj("2024-04-30"), obj("2024-05-02", name="x.txt")]
    days, cursor, _, _ = tick(s, NewFilesCursor(), files)
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03"]  # 04-30 is before start_date; x.txt does not match
    days, cursor, _, _ = tick(s, cursor, files)
    assert days == []
    files = [obj("2024-05-01"), obj("2024-05-02", generation=2), obj("2024-05-03"), obj("2024-05-04")]
    days, cursor, _, _ = tick(s, cursor, files)
    assert days == ["2024-05-02", "2024-05-04"]
    # a second file in an interval changes it too
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/\w+\.parquet")
    days, cursor, _, _ = tick(s, cursor, files)
    assert days == []
    days, cursor, _, _ = tick(s, cursor, [*files, obj("2024-05-04", name="more.parquet")])
    assert days == ["2024-05-04"]


def test_unfinished_interval_waits_until_it_is_a_partition() -> None:
    s = spec()
    files = [obj("2024-05-30"), obj("2024-05-31"), obj("2024-06-01")]
    days, cursor, _, _ = tick(s, NewFilesCursor(), files, now=NOW)  # 06-01 has not ended at NOW
    assert days == ["2024-05-30", "2024-05-31"]
    days, cursor, _, _ = tick(s, cursor, files, now=NOW + timedelta(hours=12))
    assert days == []
    days, cursor, _, _ = tick(s, cursor, files, now=NOW + timedelta(days=1))
    assert days == ["2024-06-01"]


def test_sortable_listing_starts_at_lookback_and_cursor_stays_small() -> None:
    s = spec()
    files = [obj(f"2024-05-{d:02d}") for d in range(1, 31)]
    days, cursor, plan, _ = tick(s, NewFilesCursor(), files, lookback=3)
    assert len(days) == 30 and plan.start_offset == "passport/2024-05-01"
    days, cursor, plan, _ = tick(s, cursor, files, lookback=3)
    assert days == [] and plan.start_offset == "passport/2024-05-27"
    assert sorted(cursor.digests) == [f"2024-05-{d:02d}T00:00:00+00:00" for d in range(27, 31)]
    # a re-upload inside the lookback is seen; one older than the lookback is not (documented)
    files[28] = obj("2024-05-29", generation=5)
    files[2] = obj("2024-05-03", generation=5)
    days, cursor, _, _ = tick(s, cursor, files, lookback=3)
    assert days == ["2024-05-29"]


def test_bounded_ticks_sortable_request_completed_intervals_early() -> None:
    s = spec()
    files = [obj(f"2024-05-{d:02d}", name=f"part{p}.parquet") for d in range(1, 6) for p in range(3)]
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/part\d\.parquet")
    cursor, seen, ticks = NewFilesCursor(), [], 0
    while True:
        days, cursor, _, _ = tick(s, cursor, files, bound=4)
        seen += days
        ticks += 1
        if cursor.scan_after is None:
            break
    assert seen == [f"2024-05-{d:02d}" for d in range(1, 6)] and ticks == 4
    # the same digests as one unbounded pass: nothing more to request
    days, _, _, _ = tick(s, cursor, files)
    assert days == []


def test_bounded_ticks_full_scan_requests_at_pass_end() -> None:
    s = spec(path_base="drops", file_match=r"(?P<region>[a-z]+)/scores_(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.csv")
    assert not is_sortable(s)
    files = [ObjectInfo(name=f"drops/{region}/scores_2024-05-{d:02d}.csv", generation=1, size=1)
             for region in ("eu", "us") for d in (1, 2, 3)]
    first, cursor, _, _ = tick(s, NewFilesCursor(), files, bound=4)
    assert first == [] and cursor.scan_after == "drops/us/scores_2024-05-01.csv"
    days, cursor, _, _ = tick(s, cursor, files, bound=4)
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03"] and cursor.scan_after is None
    files[4] = ObjectInfo(name="drops/us/scores_2024-05-02.csv", generation=2, size=1)
    days, cursor, _, _ = tick(s, cursor, files)
    assert days == ["2024-05-02"]
    # a full pass forgets intervals whose files are gone
    days, cursor, _, _ = tick(s, cursor, [f for f in files if "05-01" not in f.name])
    assert days == [] and "2024-05-01T00:00:00+00:00" not in cursor.digests


def test_unparseable_names_are_reported_not_requested() -> None:
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet")
    days, _, _, unparseable = tick(s, NewFilesCursor(), [obj("2024-05-02"), obj("2024-13-45")])
    assert days == ["2024-05-02"] and unparseable == ["passport/2024-13-45/scores.parquet"]


def test_unreadable_cursor_starts_afresh() -> None:
    for text in (None, "", "not json", '{"v": 0}', '{"v": 1, "pending": {"x": [1]}}'):
        assert NewFilesCursor.from_json(text) == NewFilesCursor()
