"""The new-files sensor's cost per tick against the bucket's size, in two layouts.

The sensor is the project's own (``interval_gcs_import_asset``'s ``{name}_new_files_sensor``),
evaluated in this process with ``dg.build_sensor_context`` against fake-gcs-server (which
pages and honours ``startOffset`` like GCS) through a counting proxy. Per tick: list requests,
other requests, names listed, runs requested, and the seconds spent outside HTTP (the tick's
wall time minus the upstream's time for its requests). fake-gcs-server walks the whole
bucket for every page, so its wall time says nothing about GCS; request counts do.

- sparse: daily intervals of 100 files, grown 1,000 -> 10,000 -> 100,000 objects; after each
  growth the sensor catches up, then one quiet tick is measured, next to a bare listing of
  the whole prefix (what a sensor without a cursor pays);
- dense: 100 intervals of 1,000 files (100,000 objects), default look-back;
- at the full size: one new interval, one re-uploaded object inside the look-back, and one
  older than it (not noticed by design: it needs a run of that partition).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from localdev.benchmarks.context import Bench
from localdev.benchmarks.http_counting import CountingProxy
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.seeding import seed_objects
from orchestrator.factories import IntervalGCSAsset
from orchestrator.factories.import_asset import interval_gcs_import_asset
from worker.core.gcs import storage_client

PAGE = 1_000


@dataclass(frozen=True)
class Tick:
    list_requests: int
    other_requests: int
    runs_requested: int
    seconds_outside_http: float
    truncated: bool


class SensorProbe:
    """The project's sensor for one bucket, its cursor, and the proxy that counts its requests."""

    def __init__(self, bench: Bench, *, bucket: str, name: str, first_day: datetime, proxy: CountingProxy) -> None:
        self.config = IntervalGCSAsset(
            name=name, project_id="test-project", bucket_name=bucket, path_base="drops",
            file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/part-\d+\.csv", destination_table=name,
            raw_dataset_name="bench_raw", clean_dataset_name="bench_clean", interval="Daily", mode="Incremental",
            retention_days=30, format="CSV", start_date=f"{first_day:%Y-%m-%d}",
            schema=({"name": "v", "type": "STRING", "mode": "NULLABLE"},),
        )
        response = interval_gcs_import_asset(self.config, code_references=[])
        [self.sensor] = [s for s in response.sensors if s.name == f"{name}_new_files_sensor"]
        self.proxy = proxy
        self.cursor: str | None = None
        self.instance = dg.DagsterInstance.ephemeral()

    def tick(self) -> Tick:
        self.proxy.take()
        started = time.monotonic()
        with dg.build_sensor_context(cursor=self.cursor, instance=self.instance) as context:
            result = self.sensor(context)
        wall = time.monotonic() - started
        time.sleep(0.3)  # a background request the tick started (a bucket GET) lands before the count
        requests = self.proxy.take()
        self.cursor = result.cursor
        lists = [r for r in requests if r.method == "GET" and r.path.split("?")[0].endswith("/o")]
        return Tick(list_requests=len(lists), other_requests=len(requests) - len(lists),
                    runs_requested=len(result.run_requests or []),
                    seconds_outside_http=max(wall - sum(r.seconds for r in requests), 0.0),
                    truncated='"scan_after":null' not in (self.cursor or ""))

    def catch_up(self, *, max_ticks: int = 500) -> tuple[int, int, int]:
        """Tick until a pass ends; return (ticks, list requests, runs requested)."""
        ticks = lists = runs = 0
        while ticks < max_ticks:
            tick = self.tick()
            ticks, lists, runs = ticks + 1, lists + tick.list_requests, runs + tick.runs_requested
            if not tick.truncated:
                return ticks, lists, runs
        raise RuntimeError(f"the sensor did not finish a pass in {max_ticks} ticks")


def _files(day: datetime, count: int, *, body: bytes = b"v\nx\n"):
    return ((f"drops/{day:%Y-%m-%d}/part-{i:06d}.csv", body) for i in range(count))


def _bare_listing(proxy: CountingProxy, bucket: str) -> int:
    """objects.list requests of listing the whole prefix once (through the proxy)."""
    client = storage_client(project_id="test-project")  # STORAGE_EMULATOR_HOST is the proxy here
    proxy.take()
    sum(1 for _ in client.list_blobs(bucket, prefix="drops/", page_size=PAGE, fields="items(name),nextPageToken"))
    return len([r for r in proxy.take() if r.path.split("?")[0].endswith("/o")])


def measure(bench: Bench) -> list[Figure]:
    per_interval_sparse, per_interval_dense = 100, 1_000
    sizes = (1_000, 10_000) if bench.quick else (1_000, 10_000, 100_000)
    total = sizes[-1]
    label = f"{total}_objects"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last_day = today - timedelta(days=2)  # yesterday stays free for the "new interval" tick
    figures: list[Figure] = []
    with CountingProxy(bench.svc.gcs_endpoint) as proxy:
        saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.endpoint
        try:
            # sparse layout, grown in time order
            intervals = total // per_interval_sparse
            first_day = last_day - timedelta(days=intervals - 1)
            bucket = bench.new_bucket("bench-sensor-sparse").name
            probe = SensorProbe(bench, bucket=bucket, name="sensor_sparse", first_day=first_day, proxy=proxy)
            seeded = 0
            quiet_by_size: dict[int, int] = {}
            bare_by_size: dict[int, int] = {}
            for size in sizes:
                for position in range(seeded // per_interval_sparse, size // per_interval_sparse):
                    seed_objects(bench.svc.gcs_root, bucket, _files(first_day + timedelta(days=position), per_interval_sparse))
                seeded = size
                ticks, lists, runs = probe.catch_up()
                quiet = probe.tick()
                quiet_by_size[size] = quiet.list_requests + quiet.other_requests
                bare_by_size[size] = _bare_listing(proxy, bucket)
                print(f"  sensor, sparse, {size:>7} objects: catch-up {ticks} ticks / {lists} list requests / {runs} runs; "
                      f"quiet tick {quiet.list_requests} list + {quiet.other_requests} other requests, "
                      f"{quiet.seconds_outside_http * 1000:.0f} ms outside HTTP; bare listing {bare_by_size[size]} requests",
                      flush=True)
            # one new interval, then a re-upload inside the look-back, then one outside it
            seed_objects(bench.svc.gcs_root, bucket, _files(last_day + timedelta(days=1), per_interval_sparse))
            new = probe.tick()
            # steady state: the newest interval (yesterday) requested, nothing new since
            quiet = probe.tick()
            print(f"  sensor, sparse, {total:>7} objects, steady state: quiet tick {quiet.list_requests} list + "
                  f"{quiet.other_requests} other requests, {quiet.seconds_outside_http * 1000:.0f} ms outside HTTP", flush=True)
            figures += [
                Figure(id=f"sensor_list_requests_{label}_nothing_new", value=quiet.list_requests, unit="requests",
                       goal=2, goal_is=GoalIs.MAX,
                       how=f"objects.list requests of one quiet tick over {total:,} objects (yesterday requested, nothing new), "
                           f"{per_interval_sparse} files per daily interval"),
                Figure(id=f"sensor_other_requests_{label}_nothing_new", value=quiet.other_requests, unit="requests",
                       goal=0, goal_is=GoalIs.MAX, how="requests other than objects.list in that tick (bucket metadata, ...)"),
                Figure(id=f"sensor_tick_seconds_{label}_nothing_new", value=round(quiet.seconds_outside_http, 4), unit="s",
                       how="that tick's wall time minus the time its requests spent in the GCS stand-in"),
                Figure(id=f"bare_listing_requests_{label}", value=bare_by_size[total], unit="requests",
                       how="objects.list requests of listing the whole prefix once (a sensor without a cursor, per tick)"),
            ]

            seed_objects(bench.svc.gcs_root, bucket, _files(last_day + timedelta(days=1), 1, body=b"v\ny\n"),
                         generation=2_000_000_000_000_000)
            reupload = probe.tick()
            seed_objects(bench.svc.gcs_root, bucket, _files(first_day + timedelta(days=3), 1, body=b"v\nz\n"),
                         generation=2_100_000_000_000_000)
            old = probe.tick()
            figures += [
                Figure(id=f"sensor_list_requests_{label}_new_interval", value=new.list_requests, unit="requests",
                       how=f"a tick after one new interval of {per_interval_sparse} files arrived ({new.runs_requested} run requested)"),
                Figure(id=f"sensor_runs_requested_{label}_reupload_in_lookback", value=reupload.runs_requested, unit="runs",
                       goal=1, goal_is=GoalIs.MIN,
                       how=f"a re-upload into yesterday's interval is requested again ({reupload.list_requests} list requests)"),
                Figure(id=f"sensor_runs_requested_{label}_reupload_outside_lookback", value=old.runs_requested, unit="runs",
                       how="a re-upload older than the look-back (1 day by default) is not noticed: it needs a run of that partition"),
            ]
            bench.plot_data["sensor_requests"] = {"sizes": list(sizes), "quiet": [quiet_by_size[s] for s in sizes],
                                                  "bare": [bare_by_size[s] for s in sizes]}

            # dense layout
            dense_intervals = total // per_interval_dense
            dense_first = today - timedelta(days=dense_intervals)  # the newest interval is yesterday's
            bucket = bench.new_bucket("bench-sensor-dense").name
            for position in range(dense_intervals):
                seed_objects(bench.svc.gcs_root, bucket, _files(dense_first + timedelta(days=position), per_interval_dense))
            probe = SensorProbe(bench, bucket=bucket, name="sensor_dense", first_day=dense_first, proxy=proxy)
            first = probe.tick()
            figures.append(Figure(
                id=f"sensor_first_tick_list_requests_{label}", value=first.list_requests, unit="requests",
                goal=math.ceil(10_000 / PAGE), goal_is=GoalIs.MAX,
                how=f"the first tick on a bucket of {total:,} objects the sensor has never seen (bound: 10,000 names a tick; "
                    f"{first.other_requests} other requests)"))
            ticks, lists, runs = probe.catch_up()
            ticks, lists, runs = ticks + 1, lists + first.list_requests, runs + first.runs_requested
            quiet = probe.tick()
            print(f"  sensor, dense, {total:>7} objects: catch-up {ticks} ticks / {lists} list requests / {runs} runs; "
                  f"quiet tick {quiet.list_requests} list requests", flush=True)
            figures += [
                Figure(id=f"sensor_list_requests_{label}_dense_nothing_new", value=quiet.list_requests, unit="requests",
                       how=f"one quiet tick over {total:,} objects, {per_interval_dense:,} files per daily interval, default look-back"),
                Figure(id=f"sensor_first_pass_list_requests_{label}_dense", value=lists, unit="requests",
                       how=f"the whole first pass over that bucket ({ticks} ticks, {runs} runs requested)"),
            ]
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved
    return figures
