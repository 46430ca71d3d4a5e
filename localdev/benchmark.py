"""Benchmark: what batching and leaving file data in GCS buy, as ratios measured in one run.

Run with ``python -m localdev.benchmark`` (starts its own emulators). It prints:

1. worker peak memory for a small and a 20x larger interval (the worker never
   reads file contents, so it stays flat), next to a hand-written loader that
   downloads the files into the process first (it grows with the data);
2. one batched load job for N files vs one load job per file;
3. batched deletes (100 per request) vs one delete request per object;
4. a re-run of unchanged intervals (skipped via the ledger) vs the first run;
5. pure matching throughput over 100,000 object names.

Absolute times are the emulators' and this machine's; the ratios are the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

from localdev.samples import SCORES_SCHEMA, encode_rows, score_rows, upload
from localdev.services import run_local_services
from worker.clients import bigquery_client, storage_client
from worker.matching import ObjectInfo, match_objects
from worker.spec import ImportSpec

ROWS_PER_FILE = 20_000
SMALL, LARGE = 10, 200


def _spec(*, bucket: str, name: str) -> ImportSpec:
    return ImportSpec(
        name=name, project_id="test-project", bucket_name=bucket, path_base="drops",
        file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/part-\d+\.parquet", destination_table=name,
        raw_dataset_name="bench_raw", clean_dataset_name="bench_clean", interval="Daily", mode="Incremental",
        retention_days=0, format="PARQUET", schema=SCORES_SCHEMA,
    )


def _run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``command``; return (peak RSS in MiB of exactly this child, seconds, stdout)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{command} failed: {err.read()[-2000:]}")
        return usage.ru_maxrss / 1024, seconds, out.read()


_NAIVE_LOADER = """
import io, sys, pyarrow as pa, pyarrow.parquet as pq
from worker.clients import storage_client
gcs = storage_client(project_id="test-project")
tables = [pq.read_table(io.BytesIO(b.download_as_bytes())) for b in gcs.list_blobs(sys.argv[1], prefix=sys.argv[2])]
table = pa.concat_tables(tables)
print(table.num_rows)
"""


def main() -> None:
    with run_local_services() as svc:
        os.environ.update(svc.env())
        env = {**os.environ}
        gcs = storage_client(project_id=svc.project_id)
        bq = bigquery_client(project_id=svc.project_id)
        bucket = gcs.create_bucket("bench-bucket")
        day_small, day_large = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
        print(f"Uploading {SMALL} + {LARGE} Parquet files of {ROWS_PER_FILE} rows ...", flush=True)
        sizes = {}
        for day, count in ((day_small, SMALL), (day_large, LARGE)):
            total = 0
            for i in range(count):
                data = encode_rows(score_rows(interval_start=day, count=ROWS_PER_FILE, seed=i), fmt="PARQUET")
                upload(bucket, f"drops/{day:%Y-%m-%d}/part-{i:04d}.parquet", data)
                total += len(data)
            sizes[day] = total
        spec = _spec(bucket=bucket.name, name="bench_scores")
        spec_path = os.path.join(svc.gcs_root, "..", "bench-spec.json")
        with open(spec_path, "w") as handle:
            json.dump(spec.to_dict(), handle)

        rows = []

        def worker(day: datetime) -> tuple[float, float]:
            rss, secs, out = _run_measured([sys.executable, "-m", "worker", "import", "--spec", spec_path,
                                          "--start", f"{day:%Y-%m-%d}"], env)
            phases = {k: v for k, v in json.loads(out)["metadata"].items() if k.startswith("seconds_")}
            print(f"  worker run for {day:%Y-%m-%d}: {secs:.1f} s, peak RSS {rss:.0f} MiB, phases {phases}", flush=True)
            return rss, secs

        w_small, _ = worker(day_small)
        w_large, t_large = worker(day_large)
        _, t_rerun = worker(day_large)
        n_small, _, _ = _run_measured([sys.executable, "-c", _NAIVE_LOADER, bucket.name, f"drops/{day_small:%Y-%m-%d}/"], env)
        n_large, _, _ = _run_measured([sys.executable, "-c", _NAIVE_LOADER, bucket.name, f"drops/{day_large:%Y-%m-%d}/"], env)
        data_ratio = sizes[day_large] / sizes[day_small]
        rows.append(("input data, large / small interval", f"{data_ratio:.1f}x",
                     f"{sizes[day_small] / 2**20:.1f} MiB -> {sizes[day_large] / 2**20:.1f} MiB"))
        rows.append(("worker peak RSS, large / small", f"{w_large / w_small:.2f}x", f"{w_small:.0f} -> {w_large:.0f} MiB"))
        rows.append(("download-into-process loader peak RSS, large / small", f"{n_large / n_small:.2f}x",
                     f"{n_small:.0f} -> {n_large:.0f} MiB"))
        rows.append(("download loader / worker peak RSS (large)", f"{n_large / w_large:.2f}x", ""))
        rows.append(("re-run of an unchanged interval / first run (time)", f"{t_rerun / t_large:.2f}x",
                     f"{t_large:.1f} s -> {t_rerun:.1f} s"))

        # Batched load job vs one job per file, same files, into throwaway tables.
        from google.cloud import bigquery

        uris = [f"gs://{bucket.name}/drops/{day_small:%Y-%m-%d}/part-{i:04d}.parquet" for i in range(SMALL)]
        config = bigquery.LoadJobConfig(source_format="PARQUET", write_disposition="WRITE_APPEND",
                                        schema=[bigquery.SchemaField(f["name"], f["type"]) for f in SCORES_SCHEMA])
        started = time.monotonic()
        bq.load_table_from_uri(uris, "test-project.bench_raw.batched", job_config=config).result()
        t_batched = time.monotonic() - started
        started = time.monotonic()
        for uri in uris:
            bq.load_table_from_uri(uri, "test-project.bench_raw.per_file", job_config=config).result()
        t_per_file = time.monotonic() - started
        rows.append((f"one load job per file / one batched job ({SMALL} files)", f"{t_per_file / t_batched:.1f}x",
                     f"{t_batched:.2f} s vs {t_per_file:.2f} s; jobs: 1 vs {SMALL}"))

        # Batched deletes vs one request each.
        doomed = [upload(bucket, f"doomed/{i:04d}", b"x") for i in range(400)]
        started = time.monotonic()
        for chunk in (doomed[i:i + 100] for i in range(0, 200, 100)):
            with gcs.batch():
                for blob in chunk:
                    bucket.delete_blob(blob.name, if_generation_match=blob.generation)
        t_batch_del = time.monotonic() - started
        started = time.monotonic()
        for blob in doomed[200:]:
            bucket.delete_blob(blob.name, if_generation_match=blob.generation)
        t_single_del = time.monotonic() - started
        rows.append(("200 single deletes / 200 batched deletes (time)", f"{t_single_del / t_batch_del:.1f}x",
                     f"{t_batch_del:.2f} s vs {t_single_del:.2f} s; requests: 2 vs 200"))

    names = [ObjectInfo(name=f"drops/{2000 + i // 36500:04d}-{(i // 3000) % 12 + 1:02d}-{i % 28 + 1:02d}/part-{i:06d}.parquet",
                        generation=i, size=1) for i in range(100_000)]
    started = time.monotonic()
    result = match_objects(_spec(bucket="b-b-b", name="bench"), names)
    t_match = time.monotonic() - started
    rows.append(("matching 100,000 names (pure)", f"{100_000 / t_match:,.0f}/s",
                 f"{t_match:.2f} s, {result.matched} matched, {len(result.by_interval)} intervals"))

    width = max(len(r[0]) for r in rows)
    print("\nBenchmark (one run; ratios are the result, absolute figures depend on the emulators)")
    for label, ratio, detail in rows:
        print(f"  {label:<{width}}  {ratio:>10}  {detail}")


if __name__ == "__main__":
    main()
