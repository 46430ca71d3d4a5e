"""Worker memory against the number of files in an interval (the worker never reads file data).

Each interval holds N one-row CSV files; the worker imports it as a child process and reports its
own peak RSS (``VmHWM``, see :mod:`localdev.benchmarks.peak_rss`). The objects are listed from fake-gcs-server, which pages like GCS
(1,000 names a page), so what the worker keeps per object is what grows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from localdev.benchmarks.context import Bench, proxied_env, run_measured, worker_import_command
from localdev.benchmarks.http_counting import CountingProxy
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.seeding import seed_objects
from worker.core.spec import ImportSpec

FULL_COUNTS = (10, 10_000, 40_000)
QUICK_COUNTS = (10, 2_000)
_FIRST_DAY = datetime(2024, 3, 1, tzinfo=UTC)


def one_row_csv_spec(*, name: str, bucket: str, retention_days: int = 30) -> ImportSpec:
    """A daily CSV import of ``drops/YYYY-MM-DD/part-NNNNNN.csv`` with one STRING column."""
    return ImportSpec(
        name=name, project_id="test-project", bucket_name=bucket, path_base="drops",
        file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/part-\d+\.csv", destination_table=name,
        raw_dataset_name="bench_raw", clean_dataset_name="bench_clean", interval="Daily", mode="Incremental",
        retention_days=retention_days, format="CSV", schema=({"name": "v", "type": "STRING", "mode": "NULLABLE"},),
    )


def seed_interval(bench: Bench, *, bucket: str, day: datetime, files: int) -> None:
    seed_objects(bench.svc.gcs_root, bucket, ((f"drops/{day:%Y-%m-%d}/part-{i:06d}.csv", b"v\nx\n") for i in range(files)))


def measure(bench: Bench) -> list[Figure]:
    counts = QUICK_COUNTS if bench.quick else FULL_COUNTS
    bucket = bench.new_bucket("bench-worker-memory").name
    spec = one_row_csv_spec(name="worker_memory", bucket=bucket)
    spec_path = bench.write_spec(spec)
    rss: dict[int, float] = {}
    largest: dict[int, int] = {}
    with CountingProxy(bench.svc.gcs_endpoint) as gcs_proxy, CountingProxy(bench.svc.bigquery_endpoint) as bq_proxy:
        env = proxied_env(bench, gcs_endpoint=gcs_proxy.endpoint, bigquery_endpoint=bq_proxy.endpoint)
        for position, files in enumerate(counts):
            day = _FIRST_DAY + timedelta(days=position)
            seed_interval(bench, bucket=bucket, day=day, files=files)
            gcs_proxy.take()
            bq_proxy.take()
            run = run_measured(worker_import_command(spec_path, day), env=env)
            rss[files] = run.peak_rss_mib
            largest[files] = max(r.request_bytes for r in [*gcs_proxy.take(), *bq_proxy.take()])
            print(f"  worker, {files:>6} files: peak RSS {run.peak_rss_mib:.0f} MiB, {run.seconds:.1f} s, "
                  f"largest request {largest[files]:,} B", flush=True)
    small, large = counts[0], counts[-1]
    bench.plot_data["worker_rss"] = rss
    figures = [Figure(id=f"worker_peak_rss_mib_{n}_files", value=round(rss[n], 1), unit="MiB",
                      how=f"peak RSS (VmHWM) of `python -m worker import` for one interval of {n:,} files") for n in counts]
    figures.append(Figure(
        id=f"worker_peak_rss_ratio_{large}_vs_{small}_files", value=round(rss[large] / rss[small], 3), unit="ratio",
        goal=1.5, goal_is=GoalIs.MAX,
        how=f"the worker's peak RSS for an interval of {large:,} files over that of {small:,} files, same run"))
    figures.append(Figure(
        id=f"largest_request_bytes_{large}_files", value=largest[large], unit="bytes", goal=10_000_000, goal_is=GoalIs.MAX,
        how=f"the largest HTTP request the worker sent to GCS or BigQuery importing {large:,} files (BigQuery's limit: 10 MB)"))
    figures.append(Figure(
        id="worker_rss_growth_kib_per_file", value=round((rss[large] - rss[small]) * 1024 / (large - small), 3), unit="KiB",
        how=f"what each further file in an interval adds to the worker's peak RSS ({small:,} -> {large:,} files)"))
    return figures
