"""Event-driven arrivals, measured: a notifications tick's GCS requests, and arrival to queryable through the daemon.

Both run against fake-gcs-server publishing Cloud Storage notifications to the Pub/Sub emulator (the services
of :func:`localdev.services.run_local_services` with notifications on) and bqemulator.

- ``notification_sensor_requests_100000_objects_one_new`` (quick: 10,000): a bucket seeded with that many
  objects (written into fake-gcs-server's files: no notification each), one object uploaded through the JSON
  API (its ``OBJECT_FINALIZE`` notification published), then one tick of the project's
  ``{name}_gcs_notifications_sensor``, evaluated in this process (``dg.build_sensor_context``) with GCS behind
  a counting proxy: the GCS requests of that tick. A spec without ``complete_when`` needs none: the
  notification names the object and its generation.
- ``event_arrival_to_queryable_seconds_p50`` / ``_p95``: a deployment as ``dagster dev`` runs one: a
  ``DAGSTER_HOME`` in a temporary folder (the default instance: SQLite storage, the default run coordinator
  and run launcher), ``dagster sensor start`` for the notifications sensor (Dagster's default interval, 30 s),
  then ``dagster-daemon run`` on the code location :mod:`localdev.benchmarks.event_location`. Uploads (20;
  quick: 3) at uniformly random moments over ``uploads x 30 s`` (quick: 30 s) after the sensor's first tick,
  so each lands at a random point of the tick cycle; each into its own daily interval (no two runs write
  the same interval). From each upload until a query of the clean table returns its row (polled every
  :data:`POLL_SECONDS`): the daemon's sensor tick, the run queue, the run process, the worker's load and
  publish. Goals: p50 <= 45 s, p95 <= 75 s (Snowpipe, the fastest established loader, takes about a minute;
  BigQuery's transfer service reacts every 10 minutes at best). Beside them, from the instance: the wait from
  each upload until its run was created (the tick), and the materializations' own ``arrival_to_queryable_seconds``
  of the same partitions (the worker's measurement of the same span).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.api_core import exceptions as gexc

from localdev.benchmarks.context import Bench
from localdev.benchmarks.http_counting import CountingProxy
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.seeding import seed_objects
from localdev.environment import environment
from worker.core.contract import META_ARRIVAL_TO_QUERYABLE

#: Dagster's default sensor interval, which the notifications sensor keeps.
TICK_SECONDS = 30
FULL_UPLOADS, QUICK_UPLOADS = 20, 3
QUICK_WINDOW_SECONDS = 30  # one tick period: still random moments relative to the ticks, half the CI time
FULL_OBJECTS, QUICK_OBJECTS = 100_000, 10_000
#: How often the clean table is queried for the uploads not yet seen.
POLL_SECONDS = 0.5
#: An upload not queryable this long after it was made fails the benchmark (naming it).
GIVE_UP_SECONDS = 240
P50_GOAL, P95_GOAL = 45.0, 75.0
REPO_ROOT = Path(__file__).resolve().parents[2]
SENSOR_SUFFIX = "_gcs_notifications_sensor"
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)
LOCATION_MODULE = "localdev.benchmarks.event_location"


def measure(bench: Bench) -> list[Figure]:
    figures = sensor_requests(bench)
    figures += arrival_to_queryable(bench)
    return figures


# -- arrival to queryable through the daemon ----------------------------------------------------------------


@dataclass
class Upload:
    """One measured upload: its object, the monotonic time it was made and when its row was first seen."""

    day: datetime
    token: str
    uploaded: float = 0.0
    #: the wall-clock time of the upload (compared with the run's creation time in the instance)
    uploaded_at: datetime | None = None
    queryable: float | None = None

    @property
    def partition(self) -> str:
        return f"{self.day:%Y-%m-%d}"

    @property
    def seconds(self) -> float:
        assert self.queryable is not None  # nosec B101 # only measured uploads are read
        return self.queryable - self.uploaded


def latency_config(bench: Bench, *, subscription: str) -> dict:
    """The :class:`IntervalGCSAsset` fields of the measured import (Incremental, one-row CSV files per day)."""
    return dict(
        name="event_latency", project_id=bench.svc.project_id, bucket_name="bench-event-latency", path_base="drops",
        file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/upload\.csv", destination_table="event_latency",
        raw_dataset_name="bench_event_raw", clean_dataset_name="bench_event_clean", interval="Daily",
        mode="Incremental", retention_days=36_500, format="CSV", start_date=f"{FIRST_DAY:%Y-%m-%d}",
        schema=[{"name": "token", "type": "STRING", "mode": "NULLABLE"}], notifications_subscription=subscription,
    )


def arrival_to_queryable(bench: Bench) -> list[Figure]:
    count = QUICK_UPLOADS if bench.quick else FULL_UPLOADS
    window = QUICK_WINDOW_SECONDS if bench.quick else count * TICK_SECONDS
    subscription = create_subscription(bench, "bench-event-latency")
    config = latency_config(bench, subscription=subscription)
    bucket = bench.new_bucket(config["bucket_name"])
    rng = random.Random(20)  # nosec B311 # moments of a benchmark, not a secret
    uploads = [Upload(day=FIRST_DAY + timedelta(days=i), token=f"u{i:02d}-{rng.randrange(10**9):09d}") for i in range(count)]
    moments = sorted(rng.uniform(0, window) for _ in uploads)
    home = Path(tempfile.mkdtemp(prefix="dagster-home-", dir=bench.workdir))
    with daemon(bench, home=home, config=config) as log:
        first_tick = wait_for_tick(log, sensor=config["name"] + SENSOR_SUFFIX)
        poller = CleanTablePoller(bench, table=f"{bench.svc.project_id}.{config['clean_dataset_name']}.{config['destination_table']}")
        for upload, moment in zip(uploads, moments, strict=True):
            while (pending := [u for u in uploads if u.uploaded and u.queryable is None]) and time.monotonic() < first_tick + moment:
                poller.poll(pending)
                time.sleep(POLL_SECONDS)
            time.sleep(max(0.0, first_tick + moment - time.monotonic()))
            bucket.blob(f"drops/{upload.partition}/upload.csv").upload_from_string(f"token\n{upload.token}\n",
                                                                                   content_type="text/csv")
            upload.uploaded, upload.uploaded_at = time.monotonic(), datetime.now(UTC)
        while pending := [u for u in uploads if u.queryable is None]:
            late = [u for u in pending if time.monotonic() - u.uploaded > GIVE_UP_SECONDS]
            if late:
                raise RuntimeError(f"{len(late)} upload(s) not queryable in {config['clean_dataset_name']} after "
                                   f"{GIVE_UP_SECONDS} s: " + ", ".join(u.partition for u in late)
                                   + f"; the daemon's log: {log}")
            poller.poll(pending)
            time.sleep(POLL_SECONDS)
        recorded = from_instance(home, name=config["name"], uploads=uploads)
    return latency_figures(bench, uploads=uploads, window=window, recorded=recorded)


@dataclass(frozen=True)
class Recorded:
    """What the instance recorded of the measured partitions: the materializations' own
    ``arrival_to_queryable_seconds``, and the seconds from each upload to the creation of its partition's run."""

    worker_seconds: list[float]
    to_run_created: list[float]


def latency_figures(bench: Bench, *, uploads: list[Upload], window: float, recorded: Recorded) -> list[Figure]:
    seconds = [u.seconds for u in uploads]
    p50, p95 = percentile(seconds, 0.50), percentile(seconds, 0.95)
    print(f"  arrival to queryable, {len(seconds)} uploads: " + ", ".join(f"{s:.1f}" for s in seconds), flush=True)
    how = (f"{len(seconds)} uploads at random moments over {window:g} s (each its own daily interval), the notifications "
           f"sensor at {TICK_SECONDS} s, runs launched by dagster-daemon's run launcher; from the upload until a query of "
           f"the clean table returns its row (polled every {POLL_SECONDS:g} s); linear-interpolated percentile")
    figures = [
        Figure(id="event_arrival_to_queryable_seconds_p50", value=round(p50, 1), unit="s", goal=P50_GOAL,
               goal_is=GoalIs.MAX, how=how),
        Figure(id="event_arrival_to_queryable_seconds_p95", value=round(p95, 1), unit="s", goal=P95_GOAL,
               goal_is=GoalIs.MAX, how="the same uploads' 95th percentile (Snowpipe: about a minute)"),
        Figure(id="event_arrival_to_queryable_seconds_max", value=round(max(seconds), 1), unit="s",
               how="the slowest of those uploads"),
    ]
    if recorded.to_run_created:
        figures.append(Figure(
            id="event_upload_to_run_created_seconds_p50", value=round(percentile(recorded.to_run_created, 0.5), 1),
            unit="s", how="of those uploads, from the upload until the daemon created its partition's run: the wait for "
                          "the sensor's tick (half its 30 s interval on average) and the tick itself; the rest is the "
                          "run's start (queue, run process, step process, worker) and its load and publish"))
    if recorded.worker_seconds:
        figures.append(Figure(
            id="event_worker_arrival_to_queryable_seconds_p50", value=round(percentile(recorded.worker_seconds, 0.5), 1),
            unit="s", how="the same partitions' arrival_to_queryable_seconds as their materializations report it (the "
                          "object's GCS updated time to the end of the worker's publish): the outside measurement "
                          "above less its polling"))
    bench.notes.append(
        "Event latency (`event_latency`): one `dagster-daemon run` on a temporary DAGSTER_HOME (default instance: "
        "its run coordinator and run launcher, as `dagster dev`), the notifications sensor started with "
        "`dagster sensor start`; uploads through fake-gcs-server, notifications through the Pub/Sub emulator. "
        "Measured alone: `python -m localdev.benchmarks --only event_latency --merge-into docs/benchmarks/results.json` "
        "(full mode, about 11 min); quick mode (CI, about 1 min): `python -m localdev.benchmarks --quick --only event_latency "
        "--out /tmp/bench-quick`.")
    return figures


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values``, linearly interpolated between the closest ranks (one value: itself)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class CleanTablePoller:
    """Queries the clean table for the tokens of pending uploads; marks each the moment its row is seen."""

    def __init__(self, bench: Bench, *, table: str) -> None:
        self._bq, self._table = bench.bq, table

    def poll(self, pending: list[Upload]) -> None:
        if not pending:
            return
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=[
            bigquery.ArrayQueryParameter("tokens", "STRING", [u.token for u in pending])])
        try:
            rows = self._bq.query(f"SELECT DISTINCT token FROM `{self._table}` WHERE token IN UNNEST(@tokens)",
                                  job_config=config).result()
        except (gexc.NotFound, gexc.BadRequest):  # the clean table does not exist before the first publish
            return
        seen = time.monotonic()
        found = {row["token"] for row in rows}
        for upload in pending:
            if upload.token in found:
                upload.queryable = seen


def from_instance(home: Path, *, name: str, uploads: list[Upload]) -> Recorded:
    """The materializations' ``arrival_to_queryable_seconds`` and each upload's wait for its run, read from the
    instance at ``home``."""
    import dagster as dg

    with environment({"DAGSTER_HOME": str(home)}), dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(dg.AssetKey([name]), limit=1000).records
        values = [r.asset_materialization.metadata.get(META_ARRIVAL_TO_QUERYABLE) for r in records
                  if r.asset_materialization is not None]
        to_run: list[float] = []
        for upload in uploads:
            runs = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": upload.partition}))
            if runs and upload.uploaded_at is not None:
                created = min(r.create_timestamp for r in runs)
                created = created if created.tzinfo else created.replace(tzinfo=UTC)  # SQLite storage: naive UTC
                to_run.append((created - upload.uploaded_at).total_seconds())
    return Recorded(worker_seconds=[float(v.value) for v in values if v is not None], to_run_created=to_run)


# -- the deployment ---------------------------------------------------------------------------------------


@contextmanager
def daemon(bench: Bench, *, home: Path, config: dict) -> Iterator[Path]:
    """``dagster-daemon run`` on ``home`` with the code location, its notifications sensor started; the daemon's
    log file. The daemon (and its code server and runs: one process group) is stopped on exit."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**bench.env, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT),
           "GCS_IMPORT_BENCH_EVENT_CONFIG": json.dumps(config), "GCS_IMPORT_LAUNCHER": "subprocess"}
    bin_dir = Path(sys.executable).parent
    sensor = config["name"] + SENSOR_SUFFIX
    started = subprocess.run([str(bin_dir / "dagster"), "sensor", "start", sensor, "-m", LOCATION_MODULE],
                             env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise RuntimeError(f"dagster sensor start {sensor} failed: {started.stderr[-2000:]}")
    log = home / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # nosec B603 # our own venv's dagster-daemon, fixed arguments
            [str(bin_dir / "dagster-daemon"), "run", "-m", LOCATION_MODULE], env=env, cwd=REPO_ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # a background shell ignores SIGINT; the daemon copies that, so it is restored here (it stops on SIGTERM)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        yield log
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the daemon's process group (its code server and run processes too), by the group this module started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children left behind by a daemon that exited first
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for_tick(log: Path, *, sensor: str, timeout: float = 180.0) -> float:
    """The monotonic time the daemon's log first shows ``sensor`` evaluated (the daemon is up and ticking)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if f"Checking for new runs for sensor: {sensor}" in text:
            return time.monotonic()
        time.sleep(0.5)
    raise RuntimeError(f"dagster-daemon did not tick {sensor} within {timeout:.0f} s; its log: {log}")


# -- Pub/Sub set-up and the sensor's GCS requests -----------------------------------------------------------


def create_subscription(bench: Bench, name: str) -> str:
    """A new subscription ``name`` on the topic fake-gcs-server publishes to (REST, the emulator's
    ``PUT /v1/projects/P/subscriptions/S``: https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions/create),
    ack deadline 60 s (twice the sensor's interval); its full path."""
    host = bench.svc.pubsub_host
    path = f"projects/{bench.svc.project_id}/subscriptions/{name}"
    body = json.dumps({"topic": notifications_topic(bench), "ackDeadlineSeconds": 2 * TICK_SECONDS}).encode()
    request = urllib.request.Request(f"http://{host}/v1/{path}", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):  # nosec B310 # the local emulator
        pass
    return path


def notifications_topic(bench: Bench) -> str:
    """The full path of the topic fake-gcs-server publishes the bucket notifications to.

    Raises:
        RuntimeError: the services were started without notifications (``run_local_services(notifications=True)``).
    """
    if not bench.svc.notifications_topic:
        raise RuntimeError("event_latency needs fake-gcs-server publishing notifications: "
                           "run_local_services(gcs_server='fake-gcs-server', notifications=True)")
    return bench.svc.notifications_topic


def sensor_requests(bench: Bench) -> list[Figure]:
    """The GCS requests of the notifications tick that handles one new object among ``FULL_OBJECTS`` (quick:
    ``QUICK_OBJECTS``), for a spec without ``complete_when``."""
    import dagster as dg

    from orchestrator.factories import IntervalGCSAsset, interval_gcs_import_asset

    total = QUICK_OBJECTS if bench.quick else FULL_OBJECTS
    per_interval = 1_000
    subscription = create_subscription(bench, "bench-notification-requests")
    bucket = bench.new_bucket("bench-notification-requests")
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=total // per_interval + 1)
    for position in range(total // per_interval):  # into fake-gcs-server's files: no notification each
        day = first_day + timedelta(days=position)
        seed_objects(bench.svc.gcs_root, bucket.name,
                     ((f"drops/{day:%Y-%m-%d}/part-{i:06d}.csv", b"v\nx\n") for i in range(per_interval)))
    new_day = first_day + timedelta(days=total // per_interval)
    config = IntervalGCSAsset(
        name="notification_requests", project_id=bench.svc.project_id, bucket_name=bucket.name, path_base="drops",
        file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/part-\d+\.csv", destination_table="notification_requests",
        raw_dataset_name="bench_raw", clean_dataset_name="bench_clean", interval="Daily", mode="Incremental",
        retention_days=30, format="CSV", start_date=f"{first_day:%Y-%m-%d}", notifications_subscription=subscription,
        schema=({"name": "v", "type": "STRING", "mode": "NULLABLE"},),
    )
    [sensor] = [s for s in interval_gcs_import_asset(config, code_references=[]).sensors
                if s.name == config.name + SENSOR_SUFFIX]
    bucket.blob(f"drops/{new_day:%Y-%m-%d}/part-000000.csv").upload_from_string(b"v\ny\n")  # its notification
    with CountingProxy(bench.svc.gcs_endpoint) as proxy, environment({"STORAGE_EMULATOR_HOST": proxy.endpoint}), \
            dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        result = sensor(context)
        time.sleep(0.3)  # a request the tick started in the background lands before the count
        requests = proxy.take()
    lists = [r for r in requests if r.method == "GET" and r.path.split("?")[0].endswith("/o")]
    runs = len(result.run_requests or [])
    print(f"  notifications tick, {total:,} objects, one new: {len(lists)} list + {len(requests) - len(lists)} other "
          f"GCS requests, {runs} run requested", flush=True)
    if runs != 1:
        raise RuntimeError(f"the notifications tick requested {runs} runs for one new object (expected 1): its "
                           f"notification did not arrive or was not matched")
    return [
        Figure(id=f"notification_sensor_requests_{total}_objects_one_new", value=len(lists), unit="requests",
               goal=0, goal_is=GoalIs.MAX,
               how=f"objects.list requests of the notifications sensor's tick that handles one new object in a bucket "
                   f"of {total:,} (spec without complete_when; {len(requests) - len(lists)} other GCS requests; "
                   f"{runs} run requested)"),
    ]
