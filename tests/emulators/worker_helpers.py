"""Shared helpers for the worker's emulator tests: a spec builder, uploads, clean-table reads, the CLI.

Every test builds its own spec with datasets named after ``unique_name`` so tests
sharing the session's BigQuery emulator never see each other's tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.cloud import bigquery, storage

from localdev.samples import SCORES_SCHEMA, encode_rows, score_rows, upload
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.reporting import LogReporter
from worker.results import ImportSummary, RetentionSummary
from worker.run import run_import, run_retention

REPO = Path(__file__).resolve().parents[2]
PROJECT_ID = "test-project"

#: The seed's layout: ``{path_base}/{YYYY-MM-DD}/scores.parquet`` (more files per day allowed).
DAILY_MATCH = r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/[a-z0-9_]+\.parquet"


def day(n: int, *, month: int = 1, hour: int = 0) -> datetime:
    """2024-``month``-``n`` (UTC), the tests' calendar."""
    return datetime(2024, month, n, hour, tzinfo=UTC)


def make_spec(bucket_name: str, unique_name: str, **overrides: Any) -> ImportSpec:
    """A Daily Overwrite Parquet spec with the demo's schema; datasets and asset named after the test."""
    fields: dict[str, Any] = {
        "name": f"scores_{unique_name}",
        "project_id": PROJECT_ID,
        "bucket_name": bucket_name,
        "path_base": "drops",
        "file_match": DAILY_MATCH,
        "destination_table": "scores",
        "raw_dataset_name": f"raw_{unique_name}",
        "clean_dataset_name": f"clean_{unique_name}",
        "interval": "Daily",
        "mode": "Overwrite",
        "retention_days": 30,
        "format": "PARQUET",
        "schema": SCORES_SCHEMA,
        "start_date": "2024-01-01",
    }
    fields.update(overrides)
    return ImportSpec(**fields)


def drop(bucket: storage.Bucket, name: str, rows: Sequence[dict], *, fmt: str = "PARQUET", gzip_csv: bool = False) -> storage.Blob:
    return upload(bucket, name, encode_rows(rows, fmt=fmt, gzip_csv=gzip_csv))


def drop_days(bucket: storage.Bucket, spec: ImportSpec, days: Sequence[datetime], *, rows: int | Sequence[int] = 5,
              seed: int = 0, file_name: str = "scores.parquet") -> dict[datetime, storage.Blob]:
    """One Parquet file per day under the spec's ``path_base``; ``rows`` may differ per day."""
    counts = [rows] * len(days) if isinstance(rows, int) else list(rows)
    return {
        d: drop(bucket, f"{spec.path_base}/{d:%Y-%m-%d}/{file_name}", score_rows(interval_start=d, count=n, seed=seed))
        for d, n in zip(days, counts, strict=True)
    }


def import_window(spec: ImportSpec, gcs: storage.Client, bq: bigquery.Client, start: datetime,
                  end: datetime | None = None, *, budget: RetryBudget | None = None) -> ImportSummary:
    """``run_import`` in-process for ``[start, end)`` (one interval when ``end`` is omitted)."""
    end = end or spec.interval.next_start(start)
    return run_import(spec=spec, window_start=start, window_end=end, gcs=gcs, bq=bq, reporter=LogReporter(),
                      budget=budget)


def retain(spec: ImportSpec, gcs: storage.Client, bq: bigquery.Client, *, as_of: datetime,
           dry_run: bool = False, budget: RetryBudget | None = None) -> RetentionSummary:
    return run_retention(spec=spec, gcs=gcs, bq=bq, reporter=LogReporter(), as_of=as_of, dry_run=dry_run,
                         budget=budget)


def statuses(summary: ImportSummary) -> dict[str, str]:
    return {r.suffix: r.status for r in summary.intervals}


def query(bq: bigquery.Client, sql: str) -> list[dict]:
    return [dict(row.items()) for row in bq.query(sql).result()]


def table_rows(bq: bigquery.Client, table_id: str) -> list[tuple]:
    """Every row of a table as a sorted list of tuples (column order as in the table).

    Timestamps are normalised to UTC so the comparison does not depend on how the
    emulator returns them.
    """
    project, dataset, table = table_id.split(".")
    out = []
    for row in bq.query(f"SELECT * FROM `{project}`.`{dataset}`.`{table}`").result():
        out.append(tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row.values()))
    return sorted(out, key=repr)


def table_exists(bq: bigquery.Client, table_id: str) -> bool:
    from google.api_core.exceptions import NotFound

    try:
        bq.get_table(table_id)
    except NotFound:
        return False
    return True


def count_rows(bq: bigquery.Client, table_id: str, where: str = "TRUE") -> int:
    """Row count by query: the emulator's ``job.output_rows`` is the table total after the load, not the job's rows."""
    project, dataset, table = table_id.split(".")
    return int(next(iter(bq.query(f"SELECT COUNT(*) AS n FROM `{project}`.`{dataset}`.`{table}` WHERE {where}").result()))["n"])


def rows_per_interval(bq: bigquery.Client, spec: ImportSpec) -> dict[datetime, int]:
    """Incremental clean table: {interval start (UTC): row count}."""
    project, dataset, table = spec.clean_table_id.split(".")
    col = spec.interval_column
    rows = bq.query(f"SELECT `{col}` AS s, COUNT(*) AS n FROM `{project}`.`{dataset}`.`{table}` GROUP BY `{col}`").result()
    return {r["s"].astimezone(UTC): int(r["n"]) for r in rows}


def days_in_clean(bq: bigquery.Client, spec: ImportSpec) -> dict[str, int]:
    """{value of the ``day`` column: rows} in the clean table (the sample rows carry their day)."""
    project, dataset, table = spec.clean_table_id.split(".")
    rows = bq.query(f"SELECT day, COUNT(*) AS n FROM `{project}`.`{dataset}`.`{table}` GROUP BY day").result()
    return {r["day"]: int(r["n"]) for r in rows}


def ledger_rows(bq: bigquery.Client, spec: ImportSpec) -> list[dict]:
    project, dataset, table = spec.ledger_table_id.split(".")
    return query(bq, f"SELECT * FROM `{project}`.`{dataset}`.`{table}` ORDER BY interval_start, object_name")


def object_names(bucket: storage.Bucket) -> set[str]:
    return {b.name for b in bucket.client.list_blobs(bucket.name)}


# -- the worker as a subprocess ------------------------------------------------------


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


def write_spec(tmp_path: Path, spec: ImportSpec | Mapping[str, Any], name: str = "spec.json") -> Path:
    path = tmp_path / name
    data = spec.to_dict() if isinstance(spec, ImportSpec) else dict(spec)
    path.write_text(json.dumps(data))
    return path


def run_cli(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> CliResult:
    """``python -m worker ARGS`` in a real subprocess, with this process's environment (emulator hosts) plus ``env``."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DAGSTER_PIPES_CONTEXT", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "worker", *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def cli_import(spec_path: Path, start: str, end: str | None = None, **kwargs: Any) -> CliResult:
    args = ["import", "--spec", str(spec_path), "--start", start]
    if end:
        args += ["--end", end]
    return run_cli(args, **kwargs)


def next_day(d: datetime) -> datetime:
    return d + timedelta(days=1)
