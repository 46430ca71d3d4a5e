"""The new-files sensor against the GCS emulator, evaluated as the daemon would (build_sensor_context + instance)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import dagster as dg

from localdev.conformance.exchange import Service
from localdev.samples import drop_daily_scores, upload
from orchestrator.factories import IntervalGCSAsset, SourceMode, interval_gcs_import_asset
from orchestrator.factories.partitions import partitions_def_for
from orchestrator.factories.sensors import build_new_files_sensor
from orchestrator.launchers import WorkerLauncher
from tests.emulators.orchestrator_helpers import make_asset_config


def make_spec_sensor(unique_name: str, bucket_name: str, **overrides) -> IntervalGCSAsset:
    return make_asset_config(unique_name, bucket_name, **{"mode": SourceMode.Overwrite, "schema": None, **overrides})


DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(8)]


def lookback_reaching(day: datetime) -> str:
    """A ``sensor_lookback`` whose look-back from now reaches back to ``day``."""
    return f"{(datetime.now(UTC) - day).days + 2}d"


class Ticker:
    """Evaluates a sensor tick after tick, carrying the cursor as the daemon does."""

    def __init__(self, sensor: dg.SensorDefinition, asset: dg.AssetsDefinition) -> None:
        self.sensor = sensor
        self.definitions = dg.Definitions(
            assets=[asset], sensors=[sensor], resources={"launcher": WorkerLauncher()}
        )
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, sensor_name=self.sensor.name, definitions=self.definitions
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return list(data.run_requests or [])

    def counted_tick(self, conformance) -> tuple[list[dg.RunRequest], list[tuple[str, str, dict[str, str]]]]:
        """A tick, and every request that reached GCS during it (as the conformance proxy saw them, threads
        the tick started included; token refreshes left out)."""
        before = set(threading.enumerate())
        with conformance.recording() as log:
            requests_made = self.tick()
            for thread in set(threading.enumerate()) - before:  # e.g. a background bucket GET
                if "process_request_thread" not in thread.name:  # not the proxy's own connection threads
                    thread.join(timeout=30)
        sent = []
        for r in log:
            if r.service is Service.STORAGE:
                parts = urlsplit(r.target)
                sent.append((r.method, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}))
        return requests_made, sent


def by_partition(requests: list[dg.RunRequest]) -> dict[str, dg.RunRequest]:
    out = {r.partition_key: r for r in requests}
    assert len(out) == len(requests), "a partition was requested twice in one tick"
    return out


def test_requests_new_partitions_and_reuploads_once(services, bucket, unique_name) -> None:
    # a look-back reaching 2024-05-01: the re-upload into 05-02 below is within it
    spec = make_spec_sensor(unique_name, bucket.name, sensor_lookback=lookback_reaching(DAYS[0]))
    response = interval_gcs_import_asset(spec)
    (sensor,) = [s for s in response.sensors if s.name == f"{spec.name}_new_files_sensor"]
    asset = response.asset
    ticker = Ticker(sensor, asset)
    # the same layout with the default look-back (1d): the re-upload into 05-02 is too old for it
    short = make_spec_sensor(f"{unique_name}_short", bucket.name)
    short_response = interval_gcs_import_asset(short)
    (short_sensor,) = [s for s in short_response.sensors if s.name == f"{short.name}_new_files_sensor"]
    short_ticker = Ticker(short_sensor, short_response.asset)
    blobs = drop_daily_scores(bucket, path_base="passport", days=DAYS[:3])
    upload(bucket, "passport/README.txt", b"not a drop")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    upload(bucket, f"passport/{today}/scores.parquet", b"x")  # today's partition does not exist yet

    first = by_partition(ticker.tick())
    assert sorted(first) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert sorted(by_partition(short_ticker.tick())) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    for blob in blobs:
        request = first[blob.name.split("/")[1]]
        assert f":g{blob.generation}:" in request.run_key
        assert request.asset_selection == [asset.key]
    assert ticker.tick() == []
    assert short_ticker.tick() == []

    reuploaded = drop_daily_scores(bucket, path_base="passport", days=[DAYS[1]], seed=9)[0]
    drop_daily_scores(bucket, path_base="passport", days=[DAYS[3]])
    third = by_partition(ticker.tick())
    assert sorted(third) == ["2024-05-02", "2024-05-04"]
    assert f":g{reuploaded.generation}:" in third["2024-05-02"].run_key
    assert third["2024-05-02"].run_key != first["2024-05-02"].run_key
    assert ticker.tick() == []
    # a new interval is found however far behind now it is; a re-upload older than the look-back is not
    assert sorted(by_partition(short_ticker.tick())) == ["2024-05-04"]
    assert short_ticker.tick() == []


def test_a_tick_sends_only_bounded_list_requests(services, bucket, unique_name, monkeypatch) -> None:
    spec = make_spec_sensor(unique_name, bucket.name)
    asset = interval_gcs_import_asset(spec).asset
    bound = 5
    sensor = build_new_files_sensor(spec, asset_key=asset.key, partitions_def=partitions_def_for(spec),
                                    lookback=spec.sensor_lookback_delta, max_objects_per_tick=bound)
    blobs = drop_daily_scores(bucket, path_base="passport", days=DAYS)  # 8 names, more than the bound
    ticker = Ticker(sensor, asset)
    list_path = f"/storage/v1/b/{bucket.name}/o"

    requested, sent = ticker.counted_tick(services.conformance)
    # ceil(bound / 1,000 a page) = 1 list request asking for the bound, and no other request (no bucket GET).
    # (gcp-storage-emulator ignores maxResults and startOffset: its one page holds all 8; 5 are kept.)
    assert [(m, p) for m, p, _ in sent] == [("GET", list_path)]
    query = sent[0][2]
    assert query["maxResults"] == str(bound) and query["startOffset"] == "passport/2024-05-01"
    assert query["prefix"] == "passport/" and "name" in query["fields"] and "generation" in query["fields"]
    assert [r.partition_key for r in requested] == ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]

    # the next tick resumes at the last name listed and finishes the pass, again with one list request
    requested, sent = ticker.counted_tick(services.conformance)
    assert [(m, p) for m, p, _ in sent] == [("GET", list_path)]
    assert sent[0][2]["startOffset"] == blobs[bound - 1].name and sent[0][2]["maxResults"] == str(bound)
    assert [r.partition_key for r in requested] == ["2024-05-05", "2024-05-06", "2024-05-07", "2024-05-08"]
    assert '"scan_after":null' in ticker.cursor

    # a quiet tick starts at the interval after the newest requested (now - 1d is long after it)
    requested, sent = ticker.counted_tick(services.conformance)
    assert requested == [] and [(m, p) for m, p, _ in sent] == [("GET", list_path)]
    assert sent[0][2]["startOffset"] == "passport/2024-05-09"


def test_bounded_ticks_cover_every_partition_once(services, bucket, unique_name) -> None:
    spec = make_spec_sensor(unique_name, bucket.name)
    asset = interval_gcs_import_asset(spec).asset
    sensor = build_new_files_sensor(spec, asset_key=asset.key, partitions_def=partitions_def_for(spec),
                                    max_objects_per_tick=2)
    drop_daily_scores(bucket, path_base="passport", days=DAYS[:6])
    ticker = Ticker(sensor, asset)
    seen: list[str] = []
    for _ in range(10):
        seen += [r.partition_key for r in ticker.tick()]
        if '"scan_after":null' in ticker.cursor:
            break
    assert seen == [f"2024-05-0{d}" for d in range(1, 7)]
    assert ticker.tick() == []


def test_unsorted_layout_lists_everything_and_still_finds_changes(services, bucket, unique_name) -> None:
    spec = make_spec_sensor(unique_name, bucket.name, path_base="drops",
                     file_match=r"(?P<region>eu|us)/scores_(?P<interval_timestamp>\d{4}-\d\d-\d\d)\.csv",
                     format="CSV")
    asset = interval_gcs_import_asset(spec).asset
    sensor = build_new_files_sensor(spec, asset_key=asset.key, partitions_def=partitions_def_for(spec),
                                    max_objects_per_tick=3)
    for region in ("eu", "us"):
        for day in DAYS[:2]:
            upload(bucket, f"drops/{region}/scores_{day:%Y-%m-%d}.csv", b"a,b\n1,2\n")
    ticker = Ticker(sensor, asset)
    assert ticker.tick() == []  # the pass is longer than the bound: nothing is decided yet
    assert sorted(by_partition(ticker.tick())) == ["2024-05-01", "2024-05-02"]
    upload(bucket, "drops/us/scores_2024-05-01.csv", b"a,b\n3,4\n")
    requests: list[dg.RunRequest] = []
    for _ in range(3):
        requests += ticker.tick()
    assert [r.partition_key for r in requests] == ["2024-05-01"]


def test_missing_bucket_fails_the_tick_naming_it(services, unique_name) -> None:
    spec = make_spec_sensor(unique_name, f"missing-{unique_name.replace('_', '-')}")
    response = interval_gcs_import_asset(spec)
    (sensor,) = [s for s in response.sensors if s.name.endswith("_new_files_sensor")]
    asset = response.asset
    try:
        Ticker(sensor, asset).tick()
    except Exception as exc:
        assert spec.bucket_name in str(exc)
    else:
        raise AssertionError("a tick against a missing bucket must fail")
