"""Retention: requests and time for deleting N objects, batched (the worker) versus one request per object.

Batched is the real worker, ``python -m worker retention --spec ... --as-of ...`` as a child
process, whose GCS and BigQuery requests are counted by proxies in front of the stand-ins:
batch requests (``POST /batch/storage/v1``, up to 100 conditioned deletes each), listings,
other GCS requests, and BigQuery requests. One by one is this process sending one
``blob.delete(if_generation_match=...)`` per object through the same kind of proxy.

Why the GCS stand-in differs from the rest of the suite: the Bench's fake-gcs-server answers
``client.batch()`` with "Bad response: not multi-part", so this module runs its own
gcp-storage-emulator (which handles batch deletes) in a folder under ``bench.workdir``. It is
seeded by writing its metadata file (``.cloudstorage/.meta``, read once at start) and the
object files before it starts, since uploads through its API slow down as a bucket grows. Its
costs are not GCS's: every single delete, also inside a batch, rewrites that whole JSON file,
so its time per delete grows with the bucket (about 0.2 s per delete at 10,000 objects, on
the worker's batches as on single deletes), it ignores ``ifGenerationMatch`` (the requests
still carry it), and it does not page listings (one list request, where GCS needs one per
1,000 objects). The seeded buckets have soft delete off, which halves that cost and changes no
request. Compare request counts; seconds only compare the two ways on the same stand-in.

The ledger rows are recorded directly, with the worker's own ``Ledger.ensure()`` and
``record_interval()`` (the objects' real generations, a non-skipped job id, interval
2024-01-01, ``retention_days=1``), not by a real import: bqemulator reads ``gs://`` files from
the Bench's fake-gcs-server root, so a load job cannot read objects held by this emulator.
Retention itself reads only the ledger and the listing (no raw table), so nothing else is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import google_crc32c

from localdev.benchmarks.context import Bench, run_measured
from localdev.benchmarks.http_counting import CountingProxy, Request
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.worker_memory import one_row_csv_spec
from localdev.services import _stop, _wait_http, free_port
from worker.bigquery_datasets import ensure_datasets
from worker.core.gcs import storage_client
from worker.core.records import LedgerEntry, ObjectInfo
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.ledger import Ledger
from worker.planning import MAX_DELETES_PER_BATCH, generations_digest

INTERVAL = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = "2024-02-01"  # a month after the interval: past retention_days=1
BODY = b"v\nx\n"
#: One by one at the larger N runs only when it is predicted to finish within this (from the worker's batch
#: seconds at that N, each single delete costing the stand-in at least as much, then from its own first deletes).
ONE_BY_ONE_BUDGET_SECONDS = 180.0
_PROBE_DELETES = 200
_FIRST_GENERATION = 1_700_000_000_000_000


class StorageEmulator:
    """A gcp-storage-emulator process on a data folder that is written (seeded) while it is stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seed(self, bucket: str, names: list[str]) -> dict[str, int]:
        """Replace the emulator's whole state by ``bucket`` holding ``names``; return {name: generation}.

        Writes what the emulator writes itself for a bucket created and objects uploaded through
        its API (the shapes of ``.meta``'s bucket and object resources were read off one such upload).
        """
        if self._proc is not None:
            raise RuntimeError("stop the emulator before seeding it: it reads .meta only when it starts")
        self.port = free_port()  # the object resources' mediaLink names the port it will listen on
        store = self.root / ".cloudstorage"
        shutil.rmtree(self.root, ignore_errors=True)
        (store / bucket).mkdir(parents=True)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
        crc = base64.b64encode(google_crc32c.Checksum(BODY).digest()).decode()
        generations: dict[str, int] = {}
        objects: dict[str, dict] = {}
        for position, name in enumerate(names, 1):
            generation = _FIRST_GENERATION + position
            path = store / bucket / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(BODY)
            generations[name] = generation
            objects[name] = {
                "kind": "storage#object", "id": f"{bucket}/{name}/{generation}",
                "selfLink": f"/storage/v1/b/{bucket}/o/{name}", "name": name, "bucket": bucket,
                "generation": str(generation), "metageneration": "1", "contentType": "text/csv",
                "timeCreated": now, "updated": now, "storageClass": "STANDARD", "timeStorageClassUpdated": now,
                "size": str(len(BODY)), "md5Hash": md5,
                "mediaLink": f"{self.endpoint}/download/storage/v1/b/{bucket}/o/{name}?generation={generation}&alt=media",
                "crc32c": crc, "etag": md5, "acl": [],
            }
        bucket_resource = {
            "kind": "storage#bucket", "id": bucket, "selfLink": f"/storage/v1/b/{bucket}", "projectNumber": "1234",
            "name": bucket, "timeCreated": now, "updated": now, "metageneration": "1",
            "iamConfiguration": {"bucketPolicyOnly": {"enabled": False}, "uniformBucketLevelAccess": {"enabled": False}},
            "location": "US", "locationType": "multi-region", "storageClass": "STANDARD", "etag": "CAE=",
            "acl": [], "defaultObjectAcl": [],
            # Soft delete off (the emulator's and GCS's default is 7 days): a soft-deleted object stays in .meta, so
            # every later delete would rewrite a file that never shrinks (twice the seconds; the requests are the same).
            "softDeletePolicy": {"retentionDurationSeconds": "0", "effectiveTime": now},
        }
        meta = {"buckets": {bucket: bucket_resource}, "objects": {bucket: objects}, "resumable": {},
                "bucket_iam_policies": {}, "soft_deleted": {}}
        (store / ".meta").write_text(json.dumps(meta, indent=2))
        return generations

    def start(self) -> None:
        if not self.port:
            raise RuntimeError("seed the emulator before starting it")
        log = self.root / "emulator.log"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "-d", str(self.root), "start", "--host=127.0.0.1",
             f"--port={self.port}"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(f"{self.endpoint}/storage/v1/b", proc=self._proc, log=log, timeout=120)

    def stop(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


@dataclass(frozen=True)
class Batched:
    seconds: float
    batch_requests: int
    list_requests: int
    other_gcs: Counter
    bigquery_requests: Counter
    batch_seconds: float
    phases: dict

    @property
    def gcs_requests(self) -> int:
        return self.batch_requests + self.list_requests + sum(self.other_gcs.values())

    @property
    def bigquery_total(self) -> int:
        return sum(self.bigquery_requests.values())


@dataclass(frozen=True)
class OneByOne:
    objects: int
    requests: int
    seconds: float
    upstream_seconds: float


def _names(n: int) -> list[str]:
    return [f"drops/{INTERVAL:%Y-%m-%d}/part-{i:06d}.csv" for i in range(n)]


def _kind(request: Request) -> str:
    path = request.path.split("?")[0]
    if request.method == "POST" and path.startswith("/batch/storage/v1"):
        return "batch"
    if request.method == "GET" and path.endswith("/o"):
        return "list"
    return f"{request.method} {path.split('/o/')[0] + '/o/NAME' if '/o/' in path else path}"


def _bq_kind(request: Request) -> str:
    """``GET datasets``, ``POST jobs``, ``GET queries``, ... (the REST collection, ids left out)."""
    parts = request.path.split("?")[0].split("/")[5:]  # after /bigquery/v2/projects/PROJECT
    collections = [part for position, part in enumerate(parts) if position % 2 == 0]
    return f"{request.method} {'/'.join(collections) or 'project'}"


def _record_loaded(bench: Bench, spec: ImportSpec, generations: dict[str, int]) -> None:
    """Record every object as loaded in interval 2024-01-01 with the worker's own ledger code."""
    budget = RetryBudget()
    ensure_datasets(bench.bq, spec, budget=budget)
    ledger = Ledger(bench.bq, spec, budget=budget)
    ledger.ensure()
    infos = [ObjectInfo(name=name, generation=g, size=len(BODY)) for name, g in generations.items()]
    ledger.record_interval(
        interval_start=INTERVAL, interval_rows=len(infos), raw_table=spec.raw_table_id(INTERVAL),
        entries=[LedgerEntry(name=o.name, generation=o.generation, size=o.size, job_id="bench_load_job") for o in infos],
        loaded_at=datetime.now(UTC), digest=generations_digest(spec, INTERVAL, infos))


def _listed(endpoint: str, bucket: str) -> int:
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    try:
        return sum(1 for _ in storage_client(project_id="test-project").list_blobs(bucket))
    finally:
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved


def measure_batched(bench: Bench, emulator: StorageEmulator, n: int) -> Batched:
    """Seed N objects, record them as loaded, run the worker's retention; check they are gone and stamped."""
    spec = one_row_csv_spec(name=f"bench_retention_{n}", bucket=f"bench-retention-{n}", retention_days=1)
    spec_path = bench.write_spec(spec)
    emulator.stop()
    generations = emulator.seed(spec.bucket_name, _names(n))
    emulator.start()
    _record_loaded(bench, spec, generations)
    with CountingProxy(emulator.endpoint, keep_bodies=1_000_000) as gcs_proxy, CountingProxy(bench.svc.bigquery_endpoint) as bq_proxy:
        env = {**bench.env, "STORAGE_EMULATOR_HOST": gcs_proxy.endpoint, "BIGQUERY_EMULATOR_HOST": bq_proxy.endpoint}
        run = run_measured([sys.executable, "-m", "worker", "retention", "--spec", str(spec_path), "--as-of", AS_OF],
                           env=env)
        gcs_requests, bq_requests = gcs_proxy.take(), bq_proxy.take()
    summary = json.loads(run.stdout)
    if summary.get("objects_deleted") != n:
        raise RuntimeError(f"the worker's retention deleted {summary.get('objects_deleted')} of {n} objects: {run.stdout[:2000]}")
    left = _listed(emulator.endpoint, spec.bucket_name)
    if left:
        raise RuntimeError(f"{left} of {n} objects are still in gs://{spec.bucket_name} after the worker's retention")
    rows = Ledger(bench.bq, spec).recorded(include_deleted=True)
    stamped = sum(1 for row in rows if row.deleted)
    if len(rows) != n or stamped != n:
        raise RuntimeError(f"the ledger has {len(rows)} rows for {n} objects, {stamped} with deleted_at set")
    kinds = Counter(_kind(r) for r in gcs_requests)
    failed = [r for r in gcs_requests if r.status >= 400]
    if failed:
        raise RuntimeError(f"{len(failed)} GCS requests of the worker failed, e.g. {failed[0].method} {failed[0].path} "
                           f"-> {failed[0].status}")
    batches = [r for r in gcs_requests if _kind(r) == "batch"]
    conditioned = sum(r.body.count(b"ifGenerationMatch=") for r in batches)
    if conditioned != n:
        raise RuntimeError(f"{conditioned} of the {n} deletes in the worker's batch requests carry ifGenerationMatch")
    batch_seconds = sum(r.seconds for r in batches)
    return Batched(seconds=run.seconds, batch_requests=kinds.pop("batch", 0), list_requests=kinds.pop("list", 0),
                   other_gcs=kinds, bigquery_requests=Counter(_bq_kind(r) for r in bq_requests), batch_seconds=batch_seconds,
                   phases={k: v for k, v in summary.items() if k.startswith("seconds")})


def measure_one_by_one(bench: Bench, emulator: StorageEmulator, n: int, *, budget_seconds: float | None) -> OneByOne | float:
    """Delete N seeded objects with one conditioned request each, from this process, through a proxy.

    With ``budget_seconds``, gives up when the first deletes predict a longer run and returns that prediction.
    """
    bucket_name = f"bench-one-by-one-{n}"
    emulator.stop()
    generations = emulator.seed(bucket_name, _names(n))
    emulator.start()
    with CountingProxy(emulator.endpoint) as proxy:
        saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.endpoint
        try:
            bucket = storage_client(project_id="test-project").bucket(bucket_name)
            started = time.monotonic()
            for position, (name, generation) in enumerate(generations.items(), 1):
                bucket.blob(name).delete(if_generation_match=generation)
                if budget_seconds is not None and position == min(_PROBE_DELETES, n) < n:
                    predicted = (time.monotonic() - started) / position * n
                    if predicted > budget_seconds:
                        print(f"  one by one, {n:>6} objects: stopped, its first {position} deletes predict {predicted:.0f} s "
                              f"(budget {budget_seconds:.0f} s)", flush=True)
                        return predicted
            seconds = time.monotonic() - started
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved
        requests = proxy.take()
    left = _listed(emulator.endpoint, bucket_name)
    if left:
        raise RuntimeError(f"{left} of {n} objects are still in gs://{bucket_name} after deleting them one by one")
    deletes = [r for r in requests if r.method == "DELETE"]
    return OneByOne(objects=n, requests=len(requests), seconds=seconds,
                    upstream_seconds=sum(r.seconds for r in deletes))


def measure(bench: Bench) -> list[Figure]:
    sizes = (100, 1_000) if bench.quick else (1_000, 10_000)
    emulator = StorageEmulator(bench.workdir / "retention-gcp-storage-emulator")
    batched: dict[int, Batched] = {}
    one_by_one: dict[int, OneByOne] = {}
    predicted: dict[int, float] = {}  # N: predicted seconds of the one-by-one run that was not run
    try:
        for n in sizes:
            b = batched[n] = measure_batched(bench, emulator, n)
            others = ", ".join(f"{count} {kind}" for kind, count in sorted(b.other_gcs.items())) or "none"
            bq = ", ".join(f"{count} {kind}" for kind, count in sorted(b.bigquery_requests.items()))
            print(f"  retention, {n:>6} objects: worker {b.seconds:.1f} s, {b.batch_requests} batch + {b.list_requests} list "
                  f"+ {sum(b.other_gcs.values())} other GCS requests ({others}), {b.bigquery_total} BigQuery requests ({bq}); "
                  f"batch requests {b.batch_seconds:.1f} s in the stand-in; worker phases {b.phases}", flush=True)
            if n != sizes[0] and b.batch_seconds > ONE_BY_ONE_BUDGET_SECONDS:
                # Each single delete costs the stand-in at least what one delete inside a batch does.
                predicted[n] = b.batch_seconds
                print(f"  one by one, {n:>6} objects: not run, predicted over {b.batch_seconds:.0f} s (the worker's batch "
                      f"requests alone took that; budget {ONE_BY_ONE_BUDGET_SECONDS:.0f} s)", flush=True)
                continue
            o = measure_one_by_one(bench, emulator, n, budget_seconds=None if n == sizes[0] else ONE_BY_ONE_BUDGET_SECONDS)
            if isinstance(o, float):
                predicted[n] = o
                continue
            one_by_one[n] = o
            print(f"  one by one, {n:>6} objects: {o.requests} requests, {o.seconds:.1f} s "
                  f"({o.upstream_seconds:.1f} s in the stand-in)", flush=True)
    finally:
        emulator.stop()
        shutil.rmtree(emulator.root, ignore_errors=True)

    not_run = "".join(f"; not run at {m:,} objects (predicted over {secs:.0f} s on this stand-in, budget "
                      f"{ONE_BY_ONE_BUDGET_SECONDS:.0f} s), where it is {m:,} requests by construction"
                      for m, secs in predicted.items())
    figures: list[Figure] = []
    for n, b in batched.items():
        figures += [
            Figure(id=f"retention_delete_requests_{n}_objects", value=b.batch_requests, unit="requests",
                   goal=100 if n == 10_000 else None, goal_is=GoalIs.MAX if n == 10_000 else None,
                   how=f"batch requests (POST /batch/storage/v1, up to {MAX_DELETES_PER_BATCH} conditioned deletes each) "
                       f"of `python -m worker retention` deleting {n:,} loaded objects of one interval"),
            Figure(id=f"retention_total_requests_{n}_objects", value=b.gcs_requests + b.bigquery_total, unit="requests",
                   how=f"every request that retention run sent: {b.batch_requests} batch, {b.list_requests} list (the stand-in "
                       f"does not page; GCS would take {-(-n // 1000)}), {sum(b.other_gcs.values())} other GCS, "
                       f"{b.bigquery_total} BigQuery"),
            Figure(id=f"retention_seconds_{n}_objects", value=round(b.seconds, 2), unit="s",
                   how=f"wall time of that retention run (process start to exit; {b.batch_seconds:.1f} s of it in batch "
                       "requests, dominated by gcp-storage-emulator rewriting its metadata file per delete)"),
        ]
    for n, o in one_by_one.items():
        figures += [
            Figure(id=f"one_by_one_delete_requests_{n}_objects", value=o.requests, unit="requests",
                   how=f"requests of deleting {n:,} objects with one blob.delete(if_generation_match=...) each from one "
                       f"client: N by construction (one DELETE per object){not_run}"),
            Figure(id=f"one_by_one_delete_seconds_{n}_objects", value=round(o.seconds, 2), unit="s",
                   how=f"wall time of those {n:,} sequential deletes against gcp-storage-emulator "
                       f"({o.upstream_seconds:.1f} s of it inside the stand-in)"),
        ]
    if predicted:
        bench.notes.append(
            "retention: one-by-one deletes were not run at "
            + ", ".join(f"{m:,} objects (predicted {secs:.0f} s)" for m, secs in predicted.items())
            + " on gcp-storage-emulator, which rewrites its whole metadata file per delete; there they are N requests "
              "by construction.")
    both = max(one_by_one)
    ratio = one_by_one[both].upstream_seconds / batched[both].batch_seconds
    figures.append(Figure(
        id=f"retention_batched_vs_one_by_one_time_ratio_{both}_objects", value=round(ratio, 2), unit="x",
        how=f"time inside the stand-in of {both:,} one-by-one deletes over that of the worker's batch requests for {both:,} "
            "objects (gcp-storage-emulator, whose per-delete file rewrite dominates both; on GCS batching saves round trips)"))
    bench.plot_data["retention_requests"] = {
        "sizes": list(batched), "batch_requests": [x.batch_requests for x in batched.values()],
        # N by construction where one by one was not run
        "one_by_one_requests": [one_by_one[m].requests if m in one_by_one else m for m in batched],
        "one_by_one_measured": [m in one_by_one for m in batched]}
    return figures
