"""BigQuery jobs and table writes per interval against the files in it, next to a per-file loader.

The worker imports one interval of N one-row CSV files as a child process with both endpoints
behind counting proxies; every ``jobs.insert`` is classified from its body (load, copy, query:
DML, DDL or SELECT) and every write is attributed to its destination table. BigQuery allows 1,500
table operations (load, copy and query jobs writing a table; DML statements excluded) per table
per day (https://cloud.google.com/bigquery/quotas#load_jobs): the busiest table's writes per
interval load say how many loads of an interval a day leaves (DML statements count toward that
figure but are not limited by it: https://cloud.google.com/bigquery/quotas#standard_tables).
The per-file loader (one load job per file into one table, as a loop over ``load_table_from_uri``
would) is measured the same way. Only Incremental mode is measured: an Overwrite publish also
copies into the one clean table per load.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.cloud import bigquery

from localdev.benchmarks.context import Bench, proxied_env, run_measured, worker_import_command
from localdev.benchmarks.http_counting import CountingProxy, Request
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.worker_memory import one_row_csv_spec, seed_interval
from worker.bigquery_client import bigquery_client

FULL_COUNTS = (1, 100, 10_000, 25_000)
QUICK_COUNTS = (1, 100, 1_000)
PER_FILE_COUNTS = (1, 100)
TABLE_WRITES_PER_DAY = 1_500
_FIRST_DAY = datetime(2024, 6, 1, tzinfo=UTC)
_DML = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JobCounts:
    load: int
    copy: int
    dml: int
    ddl: int
    select: int
    #: writes per destination table (load, copy and query jobs with a destination; no DML)
    table_writes: Counter
    #: tables the same requests deleted (the worker's private staging tables)
    dropped_tables: frozenset
    largest_request_bytes: int

    @property
    def busiest_table_writes(self) -> int:
        """Writes on the table written most, of the tables that outlive the run (a dropped staging
        table's writes never add up across loads)."""
        return max((n for table, n in self.table_writes.items() if table not in self.dropped_tables), default=0)


def _table(ref: dict | None) -> str | None:
    return f"{ref['projectId']}.{ref['datasetId']}.{ref['tableId']}" if ref else None


def count_jobs(requests: list[Request]) -> JobCounts:
    """Classify the ``jobs.insert`` requests among ``requests``."""
    kinds: Counter = Counter()
    writes: Counter = Counter()
    dropped = set()
    for r in requests:
        path = r.path.split("?")[0]
        if r.method == "DELETE" and "/tables/" in path:
            project, dataset, table = path.split("/projects/", 1)[1].split("/")[0::2][:3]
            dropped.add(f"{project}.{dataset}.{table}")
            continue
        if r.method != "POST" or not r.path.split("?")[0].endswith("/jobs") or not r.body:
            continue
        config = json.loads(r.body).get("configuration", {})
        if "load" in config:
            kinds["load"] += 1
            writes[_table(config["load"].get("destinationTable"))] += 1
        elif "copy" in config:
            kinds["copy"] += 1
            writes[_table(config["copy"].get("destinationTable"))] += 1
        elif "query" in config:
            sql = config["query"].get("query", "")
            kind = "dml" if _DML.match(sql) else "ddl" if _DDL.match(sql) else "select"
            kinds[kind] += 1
            if kind != "dml" and config["query"].get("destinationTable"):
                writes[_table(config["query"]["destinationTable"])] += 1
    return JobCounts(load=kinds["load"], copy=kinds["copy"], dml=kinds["dml"], ddl=kinds["ddl"], select=kinds["select"],
                     table_writes=writes, dropped_tables=frozenset(dropped),
                     largest_request_bytes=max((r.request_bytes for r in requests), default=0))


def per_file_loader(bench: Bench, proxy: CountingProxy, *, bucket: str, day: datetime, files: int) -> JobCounts:
    """One load job per file into one table, through ``proxy``."""
    import os

    saved = os.environ["BIGQUERY_EMULATOR_HOST"]
    os.environ["BIGQUERY_EMULATOR_HOST"] = proxy.endpoint
    try:
        bq = bigquery_client(project_id="test-project")
    finally:
        os.environ["BIGQUERY_EMULATOR_HOST"] = saved
    config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1, write_disposition="WRITE_APPEND",
                                    schema=[bigquery.SchemaField("v", "STRING")])
    proxy.take()
    for i in range(files):
        bq.load_table_from_uri(f"gs://{bucket}/drops/{day:%Y-%m-%d}/part-{i:06d}.csv",
                               f"test-project.bench_raw.per_file_{day:%Y%m%d}", job_config=config).result()
    return count_jobs(proxy.take())


def measure(bench: Bench) -> list[Figure]:
    counts = QUICK_COUNTS if bench.quick else FULL_COUNTS
    bucket = bench.new_bucket("bench-bigquery-writes").name
    spec = one_row_csv_spec(name="bigquery_writes", bucket=bucket)
    spec_path = bench.write_spec(spec)
    figures: list[Figure] = []
    ours: dict[int, JobCounts] = {}
    theirs: dict[int, JobCounts] = {}
    with CountingProxy(bench.svc.bigquery_endpoint, keep_bodies=20_000_000) as bq_proxy, \
            CountingProxy(bench.svc.gcs_endpoint) as gcs_proxy:
        env = proxied_env(bench, gcs_endpoint=gcs_proxy.endpoint, bigquery_endpoint=bq_proxy.endpoint)
        for position, files in enumerate(counts):
            day = _FIRST_DAY + timedelta(days=position)
            seed_interval(bench, bucket=bucket, day=day, files=files)
            bq_proxy.take()
            gcs_proxy.take()
            run_measured(worker_import_command(spec_path, day), env=env)
            jobs = count_jobs(bq_proxy.take())
            largest = max(jobs.largest_request_bytes, max((r.request_bytes for r in gcs_proxy.take()), default=0))
            ours[files] = dataclasses.replace(jobs, largest_request_bytes=largest)
            if files in PER_FILE_COUNTS:
                theirs[files] = per_file_loader(bench, bq_proxy, bucket=bucket, day=day, files=files)
            print(f"  BigQuery, {files:>6} files: {jobs.load} load, {jobs.copy} copy, {jobs.dml} DML, {jobs.ddl} DDL, "
                  f"{jobs.select} SELECT jobs; busiest table {jobs.busiest_table_writes} writes; largest request "
                  f"{largest:,} B" + (f"; per-file loader {theirs[files].load} load jobs" if files in theirs else ""), flush=True)
    for files, jobs in ours.items():
        figures += [
            Figure(id=f"load_jobs_per_interval_{files}_files", value=jobs.load, unit="jobs",
                   goal=3 if files == 25_000 else None, goal_is=GoalIs.MAX if files == 25_000 else None,
                   how=f"load jobs the worker ran for one interval of {files:,} files (10,000 URIs a job at most)"),
            Figure(id=f"copy_jobs_per_interval_{files}_files", value=jobs.copy, unit="jobs",
                   how="copy jobs (staging table -> the interval's raw table)"),
            Figure(id=f"dml_statements_per_interval_{files}_files", value=jobs.dml, unit="statements",
                   how="DML statements (ledger, pending record, clean-table publish): not limited by the table-write quota"),
            Figure(id=f"busiest_table_writes_per_interval_{files}_files", value=jobs.busiest_table_writes, unit="writes",
                   how="writes counted by the 1,500-per-table-per-day quota on the table written most by one interval load "
                       "(of the tables that outlive it: the staging table is dropped)"),
            Figure(id=f"largest_request_bytes_{files}_files", value=jobs.largest_request_bytes, unit="bytes",
                   how="the largest HTTP request the worker sent to GCS or BigQuery for that interval"),
        ]
    for files, jobs in theirs.items():
        figures.append(Figure(id=f"per_file_loader_load_jobs_per_interval_{files}_files", value=jobs.load, unit="jobs",
                              how=f"a loop of load_table_from_uri, one job per file, for {files:,} files into one table"))
    largest = max(ours)
    busiest = ours[largest].busiest_table_writes
    figures.append(Figure(
        id=f"interval_loads_per_day_within_table_write_quota_{largest}_files",
        value=TABLE_WRITES_PER_DAY // max(busiest, 1), unit="loads/day",
        how=f"1,500 table writes per table per day over the busiest table's writes per load of an interval of {largest:,} files; "
            f"a per-file loader into one table would get {TABLE_WRITES_PER_DAY / largest:.2f} (computed)"))
    bench.plot_data["jobs_per_interval"] = {"files": list(ours), "ours": [ours[n].load + ours[n].copy for n in ours],
                                            "per_file_measured": {n: theirs[n].load for n in theirs}}
    return figures
