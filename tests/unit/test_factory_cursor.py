"""The new-files sensor's cursor logic, without I/O: objects in, intervals to request out.

Plus one tick of the real sensor against an in-process fake of ``objects.list`` that pages as GCS
does (``maxResults``, ``pageToken``, ``startOffset``), counting the requests a tick makes.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest
import requests
from google.auth.credentials import AnonymousCredentials

from orchestrator.components.interval_gcs_import import IntervalGCSImportComponent
from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, SpecError
from orchestrator.factories.new_files_cursor import (
    ListingPlan,
    NewFilesCursor,
    fold_tick,
    is_sortable,
    offset_for,
    parse_lookback,
    plan_listing,
)
from orchestrator.factories.partitions import partitions_def_for
from orchestrator.factories.sensors import build_new_files_sensor, list_for_tick
from worker.core.gcs import without_bucket_metadata_fetch
from worker.core.records import ObjectInfo

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


BUCKET = "oso-dataset-transfer-bucket"


class FakeGCS:
    """``objects.list`` paged as GCS pages it, recording every request; any other request is a 404.

    It honours ``prefix``, ``startOffset`` (inclusive), ``maxResults`` (at most 1,000) and
    ``pageToken`` (here: the last name of the page before), and returns ``nextPageToken`` only
    when more names follow. ``paging=False`` behaves like gcp-storage-emulator instead: one page
    with every name under the prefix, ``startOffset`` and ``maxResults`` ignored.
    """

    is_mtls = False

    def __init__(self, objects, *, bucket: str = BUCKET, paging: bool = True) -> None:
        self.objects = sorted(objects)
        self.bucket = bucket
        self.paging = paging
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def request(self, method, url, headers=None, data=None, timeout=None, **kwargs):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, parts.path, query))
        response = requests.Response()
        response.request = requests.Request(method, url).prepare()
        response.headers["Content-Type"] = "application/json"
        if method != "GET" or parts.path != f"/storage/v1/b/{self.bucket}/o":
            response.status_code = 404
            response._content = b'{"error": {"code": 404, "message": "not an objects.list of the bucket"}}'
            return response
        found = [o for o in self.objects if o.name.startswith(query.get("prefix", ""))]
        body: dict = {}
        if self.paging:
            found = [o for o in found if o.name >= query.get("startOffset", "")]
            found = [o for o in found if "pageToken" not in query or o.name > query["pageToken"]]
            size = min(int(query.get("maxResults", 1000)), 1000)
            if len(found) > size:
                body["nextPageToken"] = found[size - 1].name
            found = found[:size]
        body["items"] = [{"name": o.name, "generation": str(o.generation), "size": str(o.size)} for o in found]
        response.status_code = 200
        response._content = json.dumps(body).encode()
        return response

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="opensource-observer", credentials=AnonymousCredentials(), _http=self)

    def list_requests(self) -> list[dict[str, str]]:
        assert all(m == "GET" and p == f"/storage/v1/b/{self.bucket}/o" for m, p, _ in self.requests), self.requests
        return [q for _, _, q in self.requests]


def tick(s, cursor, objects, *, bound=10_000, lookback=timedelta(days=7), now=NOW):
    """One tick as the sensor runs it: plan, list (the sensor's own listing, against FakeGCS), fold."""
    plan = plan_listing(s, cursor, now=now, lookback=lookback)
    gcs = FakeGCS(objects)
    listed, truncated = list_for_tick(without_bucket_metadata_fetch(gcs.client()), s, plan,
                                      max_objects=bound)
    assert len(gcs.list_requests()) <= -(-bound // 1000)
    changes, nxt, unparseable = fold_tick(s, cursor, plan, listed, truncated=truncated, now=now)
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


def test_parse_lookback() -> None:
    assert parse_lookback("6h") == timedelta(hours=6)
    assert parse_lookback("1d") == timedelta(days=1)
    assert parse_lookback("36h") == timedelta(hours=36)
    assert parse_lookback("7d") == timedelta(days=7)
    assert parse_lookback("30m") == timedelta(minutes=30)
    assert parse_lookback("2w") == timedelta(weeks=2)
    assert parse_lookback("1d12h") == timedelta(hours=36)
    assert parse_lookback("0m") == timedelta(0)
    for bad in ("", "1", "d", "1 d", " 1d", "1D", "1M", "1.5h", "-1d", "1y", "1d ", "99999999999999d", None, 1):
        with pytest.raises(ValueError):
            parse_lookback(bad)


def test_sensor_lookback_field_is_validated_when_definitions_load() -> None:
    assert spec().sensor_lookback == "1d" and spec().sensor_lookback_delta == timedelta(days=1)
    assert spec(sensor_lookback="36h").sensor_lookback_delta == timedelta(hours=36)
    with pytest.raises(SpecError) as raised:
        spec(sensor_lookback="5 days")
    message = str(raised.value)
    assert "\n" not in message
    assert "field 'sensor_lookback' is '5 days'" in message and "'1d'" in message
    # the YAML component takes it and hands it to the config (its bad value: the same error)
    yaml_fields = dict(
        name="passport_scores", project_id="opensource-observer", bucket_name="oso-dataset-transfer-bucket",
        path_base="passport", file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores\.parquet",
        destination_table="passport_scores", raw_dataset_name="oso_raw_sources", clean_dataset_name="gitcoin",
        interval="Daily", mode="Overwrite", retention_days=10,
    )
    assert IntervalGCSImportComponent(**yaml_fields).to_config().sensor_lookback == "1d"
    assert IntervalGCSImportComponent(**yaml_fields, sensor_lookback="6h").to_config().sensor_lookback == "6h"
    with pytest.raises(SpecError, match="field 'sensor_lookback' is '6 hours'"):
        IntervalGCSImportComponent(**yaml_fields, sensor_lookback="6 hours").to_config()


def test_offsets() -> None:
    assert offset_for(spec(), datetime(2024, 5, 3, tzinfo=UTC)) == "passport/2024-05-03"
    hourly = spec(interval=Interval.Hourly, file_match=r"(?P<interval_timestamp>[\dT-]+)/x.csv")
    assert offset_for(hourly, datetime(2024, 5, 3, 7, 30, tzinfo=UTC)) == "passport/2024-05-03T07"


def start_offset(s, newest: str | None, *, now: datetime, lookback: str) -> str | None:
    return plan_listing(s, NewFilesCursor(newest=newest), now=now, lookback=parse_lookback(lookback)).start_offset


def test_time_lookback_daily() -> None:
    s = spec()  # daily, start_date 2024-05-01
    morning = datetime(2024, 6, 1, 10, tzinfo=UTC)
    # the first tick (nothing requested yet): from the effective start, whatever the look-back
    fresh = plan_listing(s, NewFilesCursor(), now=morning, lookback=timedelta(days=1))
    assert fresh == ListingPlan(start_offset="passport/2024-05-01", skip_through=None, scan_from="passport/2024-05-01")
    # the default "1d" on a daily layout, yesterday requested: a quiet tick lists yesterday and today
    assert start_offset(s, "2024-05-31T00:00:00+00:00", now=morning, lookback="1d") == "passport/2024-05-31"
    # the interval containing now - look-back (05-30T22:00 is in 05-30)
    assert start_offset(s, "2024-05-31T00:00:00+00:00", now=morning, lookback="36h") == "passport/2024-05-30"
    assert start_offset(s, "2024-05-31T00:00:00+00:00", now=morning, lookback="7d") == "passport/2024-05-25"
    # newest far behind now: from the interval after it, so new intervals are found however old it is
    assert start_offset(s, "2024-05-10T00:00:00+00:00", now=morning, lookback="1d") == "passport/2024-05-11"
    # a zero look-back: the interval after the newest (today), no re-listing of ended intervals
    assert start_offset(s, "2024-05-31T00:00:00+00:00", now=morning, lookback="0m") == "passport/2024-06-01"
    # never before the spec's effective start, even with a look-back longer than the calendar
    assert start_offset(s, "2024-05-03T00:00:00+00:00", now=morning, lookback="100d") == "passport/2024-05-01"
    assert start_offset(s, "2024-05-03T00:00:00+00:00", now=morning, lookback="999999999d") == "passport/2024-05-01"
    # non-sortable layouts list the whole prefix
    unsorted = spec(file_match=r"scores_(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.parquet")
    assert start_offset(unsorted, "2024-05-31T00:00:00+00:00", now=morning, lookback="1d") is None
    # a pass in progress resumes where it stopped, whatever the look-back
    resumed = plan_listing(s, NewFilesCursor(newest="2024-05-31T00:00:00+00:00", scan_after="passport/2024-05-07/x",
                                             scan_from="passport/2024-05-01"), now=morning, lookback=timedelta(days=1))
    assert resumed == ListingPlan("passport/2024-05-07/x", "passport/2024-05-07/x", "passport/2024-05-01")


def test_time_lookback_hourly() -> None:
    s = spec(interval=Interval.Hourly, file_match=r"(?P<interval_timestamp>[\dT-]+)/x.csv")
    now = datetime(2024, 6, 1, 10, 30, tzinfo=UTC)
    newest = "2024-06-01T09:00:00+00:00"
    assert start_offset(s, None, now=now, lookback="6h") == "passport/2024-05-01T00"
    assert start_offset(s, newest, now=now, lookback="6h") == "passport/2024-06-01T04"
    assert start_offset(s, newest, now=now, lookback="1d") == "passport/2024-05-31T10"
    assert start_offset(s, newest, now=now, lookback="30m") == "passport/2024-06-01T10"
    assert start_offset(s, "2024-05-20T00:00:00+00:00", now=now, lookback="6h") == "passport/2024-05-20T01"


def test_new_unchanged_reuploaded_and_new_interval() -> None:
    s = spec()
    now = datetime(2024, 5, 5, 12, tzinfo=UTC)  # the look-back (7 days) reaches the effective start
    files = [obj("2024-05-01"), obj("2024-05-02"), obj("2024-05-03"), obj("2024-04-30"), obj("2024-05-02", name="x.txt")]
    days, cursor, _, _ = tick(s, NewFilesCursor(), files, now=now)
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03"]  # 04-30 is before start_date; x.txt does not match
    days, cursor, _, _ = tick(s, cursor, files, now=now)
    assert days == []
    files = [obj("2024-05-01"), obj("2024-05-02", generation=2), obj("2024-05-03"), obj("2024-05-04")]
    days, cursor, _, _ = tick(s, cursor, files, now=now)
    assert days == ["2024-05-02", "2024-05-04"]
    # a second file in an interval changes it too
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/\w+\.parquet")
    days, cursor, _, _ = tick(s, cursor, files, now=now)
    assert days == []
    days, cursor, _, _ = tick(s, cursor, [*files, obj("2024-05-04", name="more.parquet")], now=now)
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
    three_days = timedelta(days=3)
    now = datetime(2024, 6, 1, 10, tzinfo=UTC)
    files = [obj(f"2024-05-{d:02d}") for d in range(1, 31)]
    days, cursor, plan, _ = tick(s, NewFilesCursor(), files, lookback=three_days, now=now)
    assert len(days) == 30 and plan.start_offset == "passport/2024-05-01"
    days, cursor, plan, _ = tick(s, cursor, files, lookback=three_days, now=now)
    assert days == [] and plan.start_offset == "passport/2024-05-29"  # now - 3 days is in 05-29
    assert sorted(cursor.digests) == ["2024-05-29T00:00:00+00:00", "2024-05-30T00:00:00+00:00"]
    # a re-upload into an interval that began within the look-back is requested again; an older one is not
    files[28] = obj("2024-05-29", generation=5)
    files[2] = obj("2024-05-03", generation=5)
    days, cursor, _, _ = tick(s, cursor, files, lookback=three_days, now=now)
    assert days == ["2024-05-29"]
    # a day later 05-29 has left the look-back: its next re-upload is not noticed, 05-30's is
    later = now + timedelta(days=1)
    files[28] = obj("2024-05-29", generation=6)
    files[29] = obj("2024-05-30", generation=6)
    days, cursor, plan, _ = tick(s, cursor, files, lookback=three_days, now=later)
    assert days == ["2024-05-30"] and plan.start_offset == "passport/2024-05-30"


def test_new_intervals_are_found_however_far_behind_now_the_newest_is() -> None:
    s = spec()
    files = [obj(f"2024-05-0{d}") for d in range(1, 6)]
    days, cursor, _, _ = tick(s, NewFilesCursor(), files, lookback=timedelta(days=1), now=datetime(2024, 5, 6, tzinfo=UTC))
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "2024-05-05"]
    # weeks later a late drop for 05-20 (long before now - look-back, after the newest requested)
    files.append(obj("2024-05-20"))
    days, cursor, plan, _ = tick(s, cursor, files, lookback=timedelta(days=1), now=NOW)
    assert days == ["2024-05-20"] and plan.start_offset == "passport/2024-05-06"
    days, cursor, plan, _ = tick(s, cursor, files, lookback=timedelta(days=1), now=NOW)
    assert days == [] and plan.start_offset == "passport/2024-05-21"


def test_bounded_ticks_sortable_request_completed_intervals_early() -> None:
    files = [obj(f"2024-05-{d:02d}", name=f"part{p}.parquet") for d in range(1, 6) for p in range(3)]
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/part\d\.parquet")
    now = datetime(2024, 5, 6, tzinfo=UTC)  # the 7-day look-back reaches the effective start
    cursor, seen, ticks = NewFilesCursor(), [], 0
    while True:
        days, cursor, _, _ = tick(s, cursor, files, bound=4, now=now)
        seen += days
        ticks += 1
        if cursor.scan_after is None:
            break
    # 15 names, 4 a tick: the first tick 4 new names, each resumed one 3 (GCS returns the last name again)
    assert seen == [f"2024-05-{d:02d}" for d in range(1, 6)] and ticks == 5
    # the same digests as one unbounded pass: nothing more to request
    days, _, _, _ = tick(s, cursor, files, now=now)
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


def test_listing_stops_at_the_bound_without_another_request() -> None:
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/part-\d+\.parquet")
    files = [obj(f"2024-05-{d:02d}", name=f"part-{p:03d}.parquet") for d in range(1, 6) for p in range(500)]
    gcs = FakeGCS(files)
    client = without_bucket_metadata_fetch(gcs.client())
    first = plan_listing(s, NewFilesCursor(), now=NOW, lookback=timedelta(days=1))
    listed, truncated = list_for_tick(client, s, first, max_objects=1200)
    # ceil(1200 / 1000) requests: a full page, then only what is left of the bound; none past it
    assert [q["maxResults"] for q in gcs.list_requests()] == ["1000", "200"]
    assert len(listed) == 1200 and truncated and listed == files[:1200]
    assert gcs.requests[0][2]["startOffset"] == "passport/2024-05-01" and gcs.requests[0][2]["prefix"] == "passport/"
    # resumed at the last name (startOffset is inclusive): it comes back, counts and is dropped
    gcs.requests.clear()
    resumed = ListingPlan(start_offset=listed[-1].name, skip_through=listed[-1].name, scan_from=first.scan_from)
    listed, truncated = list_for_tick(client, s, resumed, max_objects=1200)
    assert [q["maxResults"] for q in gcs.list_requests()] == ["1000", "200"]
    assert listed == files[1200:2399] and truncated
    # the rest fits: the pass ends without a request for an empty page
    gcs.requests.clear()
    last = ListingPlan(start_offset=files[2398].name, skip_through=files[2398].name, scan_from=first.scan_from)
    listed, truncated = list_for_tick(client, s, last, max_objects=1200)
    assert listed == files[2399:] and not truncated and len(gcs.list_requests()) == 1
    # a bound of 2 still moves a resumed pass on, one name a tick
    gcs.requests.clear()
    listed, truncated = list_for_tick(client, s, last, max_objects=2)
    assert listed == [files[2399]] and truncated and [q["maxResults"] for q in gcs.list_requests()] == ["2"]


def test_listing_bounded_by_a_server_that_ignores_max_results_and_start_offset() -> None:
    """gcp-storage-emulator returns every name in one page: the same names as GCS, a resumed pass still ends."""
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/part-\d+\.parquet")
    files = [obj(f"2024-05-{d:02d}", name=f"part-{p:03d}.parquet") for d in range(1, 4) for p in range(4)]
    gcs = FakeGCS(files, paging=False)
    client = without_bucket_metadata_fetch(gcs.client())
    plan = plan_listing(s, NewFilesCursor(), now=NOW, lookback=timedelta(days=1))
    listed, truncated = list_for_tick(client, s, plan, max_objects=5)
    assert listed == files[:5] and truncated
    resumed = ListingPlan(start_offset=files[4].name, skip_through=files[4].name, scan_from=plan.scan_from)
    listed, truncated = list_for_tick(client, s, resumed, max_objects=5)
    assert listed == files[5:10] and truncated
    resumed = ListingPlan(start_offset=files[9].name, skip_through=files[9].name, scan_from=plan.scan_from)
    listed, truncated = list_for_tick(client, s, resumed, max_objects=5)
    assert listed == files[10:] and not truncated
    # a new pass from an offset: the names before it are not listed
    later = ListingPlan(start_offset="passport/2024-05-03", skip_through=None, scan_from="passport/2024-05-03")
    listed, truncated = list_for_tick(client, s, later, max_objects=5)
    assert listed == files[8:] and not truncated
    assert len(gcs.list_requests()) == 4


class SensorTicker:
    """The real sensor's ticks (``evaluate_tick``), its client talking to ``gcs``, the cursor carried over."""

    def __init__(self, s: IntervalGCSAsset, gcs: FakeGCS, monkeypatch, **sensor_kwargs) -> None:
        self.gcs = gcs

        from google.cloud import storage

        import worker.core.gcs as gcs_module

        real_client = storage.Client

        def client(project=None, **_credentials):
            assert project == s.project_id
            # google-cloud-storage's own defaults (its bucket-metadata cache included), talking to FakeGCS
            return real_client(project=project, credentials=AnonymousCredentials(), _http=gcs)

        monkeypatch.setattr(gcs_module.storage, "Client", client)
        asset = dg.AssetSpec(key=dg.AssetKey(["gitcoin", s.name]), partitions_def=partitions_def_for(s))
        self.sensor = build_new_files_sensor(s, asset_key=asset.key, partitions_def=partitions_def_for(s),
                                             lookback=s.sensor_lookback_delta, **sensor_kwargs)
        self.definitions = dg.Definitions(assets=[asset], sensors=[self.sensor])
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self) -> tuple[list[str], list[dict[str, str]]]:
        """The partitions one tick requests, and the ``objects.list`` queries it sent (asserted: nothing else)."""
        self.gcs.requests.clear()
        before = set(threading.enumerate())
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, sensor_name=self.sensor.name,
                                          definitions=self.definitions)
        data = self.sensor.evaluate_tick(context)
        for thread in set(threading.enumerate()) - before:  # e.g. a background bucket GET
            thread.join(timeout=30)
        self.cursor = data.cursor
        return [r.partition_key for r in data.run_requests or []], self.gcs.list_requests()


def test_sensor_tick_sends_only_bounded_list_requests(monkeypatch) -> None:
    s = spec(file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/part-\d+\.parquet", sensor_lookback="1d")
    files = [obj(f"2024-05-{d:02d}", name=f"part-{p:03d}.parquet") for d in range(1, 26) for p in range(500)]
    ticker = SensorTicker(s, FakeGCS(files), monkeypatch)  # the default bound: 10,000 names a tick
    # a first tick over 12,500 names: exactly 10 list requests (not an 11th to learn there is more), nothing else
    days, queries = ticker.tick()
    assert [q["maxResults"] for q in queries] == ["1000"] * 10
    assert queries[0]["startOffset"] == "passport/2024-05-01" and "pageToken" not in queries[0]
    assert days == [f"2024-05-{d:02d}" for d in range(1, 20)]  # 05-20 may have more names after the bound
    # the next tick resumes at the 10,000th name and finishes the pass
    days, queries = ticker.tick()
    assert queries[0]["startOffset"] == files[9999].name and len(queries) == 3
    assert days == [f"2024-05-{d:02d}" for d in range(20, 26)]
    # a quiet tick: one request from the interval after the newest requested (now - 1d is long after it)
    days, queries = ticker.tick()
    assert days == [] and [q["startOffset"] for q in queries] == ["passport/2024-05-26"]


def test_sensor_rejects_a_bound_that_cannot_move_a_resumed_pass_on() -> None:
    s = spec()
    for bad in (0, 1, True, "10"):
        with pytest.raises(ValueError, match="max_objects_per_tick"):
            build_new_files_sensor(s, asset_key=dg.AssetKey("x"), partitions_def=partitions_def_for(s),
                                   max_objects_per_tick=bad)


def test_lengthening_the_lookback_requests_the_intervals_it_newly_covers_once() -> None:
    s = spec()
    now = datetime(2024, 6, 1, 10, tzinfo=UTC)
    files = [obj(f"2024-05-{d:02d}") for d in range(1, 31)]
    _, cursor, _, _ = tick(s, NewFilesCursor(), files, lookback=timedelta(days=1), now=now)
    _, cursor, _, _ = tick(s, cursor, files, lookback=timedelta(days=1), now=now)  # keeps 05-31 on only
    days, cursor, _, _ = tick(s, cursor, files, lookback=timedelta(days=3), now=now)
    assert days == ["2024-05-29", "2024-05-30"]  # documented: no digest was kept for them
    days, cursor, _, _ = tick(s, cursor, files, lookback=timedelta(days=3), now=now)
    assert days == []
