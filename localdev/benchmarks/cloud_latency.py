"""Fast at the cloud's latency: the worker's range runs, listings and backfills with every response held.

The emulators answer in milliseconds; Google Cloud answers a request in tenths of a second and a job
in seconds. Here the worker talks to the emulators through the conformance proxy in latency mode
(:meth:`localdev.conformance.ConformanceProxy.set_latency`: every GCS and BigQuery response held
:data:`LATENCY_SECONDS`, concurrent requests overlapping their waits), with a counting proxy in
front of it (:class:`~localdev.benchmarks.http_counting.CountingProxy`: requests and the BigQuery job
bodies). The worker runs with the default spec (no concurrency field set), so the figures measure
whatever concurrency the worker's documented default gives.

- overlap check, first: at 0 s latency, 8 concurrent BigQuery queries, load jobs and GCS listings
  against 1, on the emulators directly and through the proxy: how far the emulators serialize what
  latency would overlap; then the 8 load jobs through the proxy at :data:`LATENCY_SECONDS`;
- one interval of 5 files, then a range of N fresh daily intervals of 5 files (N = 20, quick 5), in
  one bucket and one Incremental spec, after a warm-up interval at 0 s latency (datasets, ledger and
  clean table exist before either measured run, so neither pays for creating them);
- listing: one daily interval of 100 files among 100,000 objects (quick 10,000) under ``path_base/``,
  imported, then ``python -m worker retention --dry-run`` past its retention (the only loaded interval):
  the GCS list requests of each (counted at 0 s latency: a count does not depend on it; dry run because
  fake-gcs-server, the stand-in that pages like GCS, refuses batch requests, and a dry run lists the same);
- full mode only: a 365-day backfill of 5-file intervals, as ``BackfillPolicy.multi_run(30)`` submits
  it (one worker run per 30 partitions, one after another), within :data:`BACKFILL_BUDGET_SECONDS`.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.cloud import bigquery

from localdev.benchmarks.backfill_throughput import MAX_PARTITIONS_PER_RUN
from localdev.benchmarks.bigquery_writes import count_jobs
from localdev.benchmarks.context import Bench, proxied_env, run_measured
from localdev.benchmarks.http_counting import CountingProxy, Request
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.seeding import seed_objects
from localdev.benchmarks.worker_memory import one_row_csv_spec
from localdev.conformance import ConformanceProxy
from localdev.environment import environment
from worker.bigquery_client import bigquery_client
from worker.core.gcs import storage_client

LATENCY_SECONDS = 0.5
FILES_PER_INTERVAL = 5
FULL_RANGE, QUICK_RANGE = 20, 5
FULL_OBJECTS, QUICK_OBJECTS = 100_000, 10_000
FILES_PER_LISTED_INTERVAL = 100
BACKFILL_DAYS = 365
#: The backfill starts a further run of 30 partitions only when the slowest run so far predicts it ends within
#: this (its figure then covers the runs done, and says so): at the sequential code's ~16 s an interval the whole
#: 365-day backfill would take over 1.5 hours; within the budget it is at most a sixth of the full suite's time.
BACKFILL_BUDGET_SECONDS = 600.0
#: What the issue measured before this benchmark existed (sequential intervals, 0.5 s on BigQuery responses).
ONE_INTERVAL_SECONDS_BEFORE = 19.7
BIGQUERY_REQUESTS_PER_EXTRA_INTERVAL_BEFORE = 26
CONCURRENT = 8
_LABEL = f"{LATENCY_SECONDS:g}s".replace(".", "_")  # "0_5s"
_FIRST_DAY = datetime(2022, 1, 1, tzinfo=UTC)
_OVERLAP_DATASET = "bench_latency_overlap"


@dataclass(frozen=True)
class WorkerRun:
    seconds: float
    requests: list[Request]
    stdout: str

    @property
    def bigquery(self) -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/bigquery/")]

    @property
    def list_requests(self) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and r.path.split("?")[0].endswith("/o"))


class LatencyRig:
    """The conformance proxy (latency mode) in front of the Bench's emulators, a counting proxy in front of it."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.proxy = ConformanceProxy(bigquery_upstream=bench.svc.emulator_bigquery_endpoint,
                                      storage_upstream=bench.svc.emulator_gcs_endpoint, gcs_root=bench.svc.gcs_root)
        self._counter: CountingProxy | None = None

    @contextmanager
    def running(self) -> Iterator[LatencyRig]:
        """Both proxies serving for the block (the counting proxy is made here: it binds its port when made)."""
        self.proxy.start()
        try:
            with CountingProxy(self.proxy.endpoint, keep_bodies=1_000_000) as counter:
                self._counter = counter
                yield self
        finally:
            self._counter = None
            self.proxy.stop()

    @property
    def counter(self) -> CountingProxy:
        if self._counter is None:
            raise RuntimeError("the latency rig is not running: use `with rig.running():`")
        return self._counter

    def worker(self, *args: str) -> WorkerRun:
        """``python -m worker ARGS`` through both proxies; its wall seconds and the requests it sent."""
        env = proxied_env(self.bench, gcs_endpoint=self.counter.endpoint, bigquery_endpoint=self.counter.endpoint)
        self.counter.take()
        run = run_measured([sys.executable, "-m", "worker", *args], env=env)
        return WorkerRun(seconds=run.seconds, requests=self.counter.take(), stdout=run.stdout)

    def import_window(self, spec_path: Path, start: datetime, days: int) -> WorkerRun:
        return self.worker("import", "--spec", str(spec_path), "--start", f"{start:%Y-%m-%d}",
                           "--end", f"{start + timedelta(days=days):%Y-%m-%d}")


@contextmanager
def _clients_at(*, bigquery: str, storage: str) -> Iterator[None]:
    """Clients created in the block (in this process) reach these endpoints."""
    with environment({"BIGQUERY_EMULATOR_HOST": bigquery, "STORAGE_EMULATOR_HOST": storage}):
        yield


def _concurrent_seconds(calls: list[Callable[[], object]]) -> float:
    """Wall seconds of ``calls`` at once, each on its own thread (each with its own client, warmed before)."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # re-raised below, on the measuring thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def _calls(bench: Bench, *, bigquery_at: str, storage_at: str, bucket: str) -> dict[str, list[Callable[[], object]]]:
    """:data:`CONCURRENT` warmed calls of each kind, each with its own client at these endpoints: a ``SELECT 1``
    query, a load job of one one-row CSV file (into a table of its own each time: no table's rate limit applies)
    and a listing of ``bucket``."""
    calls: dict[str, list[Callable[[], object]]] = {"query": [], "load": [], "listing": []}
    config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1,
                                    schema=[bigquery.SchemaField("v", "STRING")])
    tables = itertools.count()

    def load(client: bigquery.Client, position: int) -> object:
        table = f"{bench.svc.project_id}.{_OVERLAP_DATASET}.t{next(tables)}_{bigquery_endpoint_id}"
        return client.load_table_from_uri(f"gs://{bucket}/o/{position}.csv", table, job_config=config).result()

    bigquery_endpoint_id = bigquery_at.rsplit(":", 1)[-1]
    with _clients_at(bigquery=bigquery_at, storage=storage_at):
        for position in range(CONCURRENT):
            bq = bigquery_client(project_id=bench.svc.project_id)
            gcs = storage_client(project_id=bench.svc.project_id)
            calls["query"].append(lambda bq=bq: list(bq.query("SELECT 1 AS x").result()))
            calls["load"].append(lambda bq=bq, position=position: load(bq, position))
            calls["listing"].append(lambda gcs=gcs: list(gcs.list_blobs(bucket)))
    for call in [c for kind in calls.values() for c in kind]:
        call()  # the connection is open and any token fetched before timing
    return calls


def measure_overlap(bench: Bench, rig: LatencyRig) -> list[Figure]:
    """1 vs :data:`CONCURRENT` concurrent queries, load jobs and listings at 0 s latency (the emulators alone, and
    through the proxy), then the load jobs through the proxy at :data:`LATENCY_SECONDS`. Each time is the best of 3
    (a slow round, another process on the machine, must not read as serializing)."""
    bucket = bench.new_bucket("bench-latency-overlap").name
    seed_objects(bench.svc.gcs_root, bucket, ((f"o/{i}.csv", b"v\nx\n") for i in range(CONCURRENT)))
    bench.bq.create_dataset(_OVERLAP_DATASET, exists_ok=True)
    rig.proxy.set_latency(0.0)
    targets = {"emulators": _calls(bench, bigquery_at=bench.svc.emulator_bigquery_endpoint,
                                   storage_at=bench.svc.emulator_gcs_endpoint, bucket=bucket),
               "proxy": _calls(bench, bigquery_at=rig.proxy.endpoint, storage_at=rig.proxy.endpoint, bucket=bucket)}

    def best(calls: list[Callable[[], object]]) -> float:
        return min(_concurrent_seconds(calls) for _ in range(3))

    ratio: dict[tuple[str, str], float] = {}
    single: dict[tuple[str, str], float] = {}
    for target, kinds in targets.items():
        for kind, calls in kinds.items():
            single[(target, kind)] = best(calls[:1])
            ratio[(target, kind)] = best(calls) / single[(target, kind)]
            print(f"  0 s latency, {target}: 1 {kind} {single[(target, kind)] * 1000:.0f} ms, {CONCURRENT} concurrent "
                  f"{ratio[(target, kind)]:.2f}x", flush=True)
    try:
        rig.proxy.set_latency(LATENCY_SECONDS)
        one = best(targets["proxy"]["load"][:1])
        at_latency = best(targets["proxy"]["load"]) / one
    finally:
        rig.proxy.set_latency(0.0)
    print(f"  {LATENCY_SECONDS} s latency: 1 load job {one:.2f} s, {CONCURRENT} concurrent {at_latency:.2f}x", flush=True)

    def said(kind: str, what: str) -> str:
        return (f"{CONCURRENT} concurrent {what} took {ratio[('emulators', kind)]:.2f}x one "
                f"({single[('emulators', kind)] * 1000:.0f} ms) on the emulator directly, {ratio[('proxy', kind)]:.2f}x "
                "through the proxy")

    bench.notes.append(
        f"cloud_latency, overlap check at 0 s latency (2 cores; each call its own client and thread): "
        f"{said('query', 'BigQuery `SELECT 1` queries')}; {said('load', 'one-file load jobs')}; "
        f"{said('listing', 'GCS listings of a small bucket')}. A ratio near {CONCURRENT} means the calls ran one after "
        f"another (the emulator, or the clients' and proxy's Python on 2 cores); either way they take milliseconds "
        f"next to the proxy's latency, whose waits overlap: at {LATENCY_SECONDS} s, {CONCURRENT} concurrent load jobs "
        f"took {at_latency:.2f}x one ({one:.2f} s).")
    figures = [
        Figure(id=f"emulator_concurrent_8_vs_1_{kind}_seconds_ratio_at_0s_latency", value=round(ratio[("emulators", kind)], 2),
               unit="ratio", how=f"wall time of {CONCURRENT} concurrent {what} over one, on {emulator} directly at 0 s latency, "
                                 f"best of 3 (1 = it overlaps them, {CONCURRENT} = one after another); through the proxy: "
                                 f"{ratio[('proxy', kind)]:.2f}; one alone: {single[('emulators', kind)] * 1000:.0f} ms")
        for kind, what, emulator in (("query", "`SELECT 1` queries (jobs.insert + results)", "bqemulator"),
                                     ("load", "load jobs of one one-row CSV file each", "bqemulator"),
                                     ("listing", "listings of a small bucket", "fake-gcs-server"))]
    figures.append(Figure(
        id=f"proxy_concurrent_8_vs_1_load_seconds_ratio_at_{_LABEL}_latency", value=round(at_latency, 2), unit="ratio",
        how=f"the {CONCURRENT} load jobs through the proxy with every response held {LATENCY_SECONDS} s (each request "
            f"held on its own thread: 1 = the waits overlap); one alone: {one:.2f} s"))
    return figures


def _check_loaded(run: WorkerRun, *, intervals: int, files: int) -> None:
    """Raises RuntimeError unless the import run's summary shows ``intervals`` intervals of ``files`` files each."""
    loaded = [i["files"] for i in json.loads(run.stdout)["intervals"]]
    if loaded != [files] * intervals:
        raise RuntimeError(f"the import run loaded {loaded} files per interval, not {intervals} intervals of {files}: "
                           f"{run.stdout[:2000]}")


def _seed_days(bench: Bench, bucket: str, first: datetime, days: int, files: int) -> None:
    seed_objects(bench.svc.gcs_root, bucket, (
        (f"drops/{first + timedelta(days=d):%Y-%m-%d}/part-{i:06d}.csv", b"v\nx\n")
        for d in range(days) for i in range(files)))


def measure_range(bench: Bench, rig: LatencyRig, intervals: int) -> tuple[list[Figure], WorkerRun]:
    """One interval, then ``intervals`` fresh ones in one run, at the latency (after a warm-up at 0 s)."""
    bucket = bench.new_bucket("bench-latency-range").name
    _seed_days(bench, bucket, _FIRST_DAY, 2 + intervals, FILES_PER_INTERVAL)
    spec_path = bench.write_spec(one_row_csv_spec(name="latency_range", bucket=bucket))
    rig.proxy.set_latency(0.0)
    warm = rig.import_window(spec_path, _FIRST_DAY, 1)
    rig.proxy.set_latency(LATENCY_SECONDS)
    try:
        one = rig.import_window(spec_path, _FIRST_DAY + timedelta(days=1), 1)
        many = rig.import_window(spec_path, _FIRST_DAY + timedelta(days=2), intervals)
    finally:
        rig.proxy.set_latency(0.0)
    for run, days in ((one, 1), (many, intervals)):
        _check_loaded(run, intervals=days, files=FILES_PER_INTERVAL)
    ratio = many.seconds / one.seconds
    extra = (len(many.bigquery) - len(one.bigquery)) / (intervals - 1)
    dml = count_jobs(many.bigquery).dml
    print(f"  warm-up interval at 0 s latency: {warm.seconds:.1f} s, {len(warm.bigquery)} BigQuery requests", flush=True)
    print(f"  one interval at {LATENCY_SECONDS} s: {one.seconds:.1f} s, {len(one.bigquery)} BigQuery requests; "
          f"{intervals} intervals: {many.seconds:.1f} s ({ratio:.2f}x), {len(many.bigquery)} BigQuery requests "
          f"({extra:.1f} per extra interval), {dml} DML statements", flush=True)
    full = intervals == FULL_RANGE
    figures = [
        Figure(id=f"one_interval_seconds_at_{_LABEL}_latency", value=round(one.seconds, 2), unit="s",
               goal=ONE_INTERVAL_SECONDS_BEFORE if not bench.quick else None, goal_is=GoalIs.MAX if not bench.quick else None,
               how=f"wall time of `python -m worker import` of one daily interval of {FILES_PER_INTERVAL} files (process "
                   f"start to exit), every GCS and BigQuery response held {LATENCY_SECONDS} s; {len(one.bigquery)} BigQuery "
                   f"requests (before: {ONE_INTERVAL_SECONDS_BEFORE} s, 38 requests, latency on BigQuery only)"),
        Figure(id=f"range_run_seconds_{intervals}_intervals_at_{_LABEL}_latency", value=round(many.seconds, 2), unit="s",
               how=f"wall time of one run over {intervals} fresh daily intervals of {FILES_PER_INTERVAL} files, same latency"),
        Figure(id=f"range_run_wall_ratio_{intervals}_vs_1_interval_at_{_LABEL}_latency", value=round(ratio, 3), unit="ratio",
               goal=3 if full else 2, goal_is=GoalIs.MAX,
               how=f"that run's wall time over the one interval's, same benchmark run (1 = the intervals fully overlap, "
                   f"{intervals} = one after another)"),
        Figure(id=f"bigquery_requests_per_interval_range_of_{intervals}", value=round(extra, 2), unit="requests",
               how=f"BigQuery requests of the {intervals}-interval run minus those of the one-interval run, over "
                   f"{intervals - 1} (the requests each further interval adds; before: "
                   f"{BIGQUERY_REQUESTS_PER_EXTRA_INTERVAL_BEFORE}); {len(many.bigquery) / intervals:.1f} per interval overall"),
        Figure(id=f"dml_statements_per_range_of_{intervals}_intervals", value=dml, unit="statements", goal=6, goal_is=GoalIs.MAX,
               how=f"INSERT/UPDATE/DELETE/MERGE jobs of that run, an Incremental first load of {intervals} fresh intervals"),
    ]
    return figures, one


def measure_listing(bench: Bench, rig: LatencyRig, objects: int) -> list[Figure]:
    """GCS list requests of importing, then retaining, one interval among ``objects`` (counted at 0 s latency)."""
    bucket = bench.new_bucket("bench-latency-listing").name
    days = objects // FILES_PER_LISTED_INTERVAL
    _seed_days(bench, bucket, _FIRST_DAY, days, FILES_PER_LISTED_INTERVAL)
    spec = one_row_csv_spec(name="latency_listing", bucket=bucket, retention_days=1)
    spec_path = bench.write_spec(spec)
    day = _FIRST_DAY + timedelta(days=days // 2)
    rig.proxy.set_latency(0.0)
    imported = rig.import_window(spec_path, day, 1)
    retained = rig.worker("retention", "--spec", str(spec_path), "--dry-run", "--as-of", f"{day + timedelta(days=30):%Y-%m-%d}")
    _check_loaded(imported, intervals=1, files=FILES_PER_LISTED_INTERVAL)
    to_delete = len(json.loads(retained.stdout).get("objects_to_delete", []))
    if to_delete != FILES_PER_LISTED_INTERVAL:
        raise RuntimeError(f"retention would delete {to_delete} objects of interval {day:%Y-%m-%d}, not its "
                           f"{FILES_PER_LISTED_INTERVAL}: {retained.stdout[:2000]}")
    print(f"  {objects:,} objects: import of one interval {imported.list_requests} list requests ({imported.seconds:.1f} s), "
          f"retention (dry run) {retained.list_requests} list requests ({retained.seconds:.1f} s)", flush=True)
    minimum = math.ceil(FILES_PER_LISTED_INTERVAL / 1000)
    return [
        Figure(id=f"import_list_requests_{objects}_objects_one_interval", value=imported.list_requests, unit="requests",
               goal=2, goal_is=GoalIs.MAX,
               how=f"objects.list requests of importing one daily interval of {FILES_PER_LISTED_INTERVAL} files in a bucket "
                   f"of {objects:,} objects under `drops/` ({days} such intervals; pages of 1,000: the whole prefix is "
                   f"{math.ceil(objects / 1000)} requests, the interval alone {minimum})"),
        Figure(id=f"retention_list_requests_{objects}_objects_one_interval", value=retained.list_requests, unit="requests",
               goal=2, goal_is=GoalIs.MAX,
               how="objects.list requests of `python -m worker retention --dry-run` past that interval's retention (the "
                   "bucket's only loaded interval; a dry run lists as a deleting run does)"),
    ]


def measure_backfill(bench: Bench, rig: LatencyRig, one: WorkerRun) -> list[Figure]:
    """A 365-day backfill of 5-file intervals, one worker run per 30 partitions, at the latency, within the budget."""
    bucket = bench.new_bucket("bench-latency-backfill").name
    first = _FIRST_DAY + timedelta(days=40)
    _seed_days(bench, bucket, first, BACKFILL_DAYS, FILES_PER_INTERVAL)
    spec_path = bench.write_spec(one_row_csv_spec(name="latency_backfill", bucket=bucket))
    rig.proxy.set_latency(0.0)
    rig.import_window(spec_path, first - timedelta(days=1), 1)  # warm-up: datasets and tables exist (no files there)
    rig.proxy.set_latency(LATENCY_SECONDS)
    done, seconds, runs, slowest = 0, 0.0, 0, 0.0
    try:
        while done < BACKFILL_DAYS and seconds + slowest <= BACKFILL_BUDGET_SECONDS:
            days = min(MAX_PARTITIONS_PER_RUN, BACKFILL_DAYS - done)
            run = rig.import_window(spec_path, first + timedelta(days=done), days)
            _check_loaded(run, intervals=days, files=FILES_PER_INTERVAL)
            done, seconds, runs, slowest = done + days, seconds + run.seconds, runs + 1, max(slowest, run.seconds)
            print(f"  backfill run {runs}: {days} intervals in {run.seconds:.1f} s ({done} of {BACKFILL_DAYS} done)", flush=True)
    finally:
        rig.proxy.set_latency(0.0)
    per_interval = seconds / done
    scope = (f"all {BACKFILL_DAYS} intervals" if done == BACKFILL_DAYS else
             f"the first {done} of {BACKFILL_DAYS} intervals ({runs} runs; a further run would have passed the "
             f"{BACKFILL_BUDGET_SECONDS:.0f} s budget: the whole backfill would take about {per_interval * BACKFILL_DAYS / 60:.0f} min)")
    bench.notes.append(f"cloud_latency: the {BACKFILL_DAYS}-day backfill at {LATENCY_SECONDS} s latency measured {scope} "
                       f"in {seconds:.0f} s.")
    return [Figure(
        id=f"backfill_seconds_per_interval_{BACKFILL_DAYS}_days_at_{_LABEL}_latency", value=round(per_interval, 3), unit="s",
        how=f"wall time per interval of a {BACKFILL_DAYS}-day backfill of {FILES_PER_INTERVAL}-file intervals as "
            f"multi_run({MAX_PARTITIONS_PER_RUN}) submits it (one `python -m worker import` per {MAX_PARTITIONS_PER_RUN} "
            f"partitions, one after another), every response held {LATENCY_SECONDS} s, over {scope}; one interval alone: "
            f"{one.seconds:.2f} s")]


def measure(bench: Bench) -> list[Figure]:
    rig = LatencyRig(bench)
    with rig.running():
        figures = measure_overlap(bench, rig)
        range_figures, one = measure_range(bench, rig, QUICK_RANGE if bench.quick else FULL_RANGE)
        figures += range_figures
        figures += measure_listing(bench, rig, QUICK_OBJECTS if bench.quick else FULL_OBJECTS)
        if not bench.quick:
            figures += measure_backfill(bench, rig, one)
    return figures
