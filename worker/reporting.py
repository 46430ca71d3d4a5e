"""Reporting: turn run summaries into Dagster metadata, asset-check results and a JSON summary.

Pure functions; :mod:`worker.__main__` sends their output through Pipes (or prints it), and progress lines
go to a :class:`Reporter` (Pipes or the log).
Metadata keys come from :mod:`worker.core.contract` so the orchestrator and the UI can
rely on them; numbers stay numbers so Dagster plots them over time.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Protocol

from worker.archive_decisions import plan_moves
from worker.core import contract as c
from worker.core.contract import PRESENT, IntervalStatus
from worker.core.retention_action import ArchiveTarget
from worker.results import ImportSummary, RetentionSummary, TableColumn


class Reporter(Protocol):
    """Where progress lines go: the Dagster UI under Pipes, stderr standalone."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


def _typed(value: Any, type_: str) -> dict[str, Any]:
    return {"raw_value": value, "type": type_}


def console_url(table_id: str) -> str:
    """The BigQuery console page of ``project.dataset.table`` (domain-scoped projects such as
    ``example.com:my-project`` contain a dot, so the id is split from the right)."""
    project, dataset, table = table_id.rsplit(".", 2)
    return f"https://console.cloud.google.com/bigquery?project={project}&ws=!1m5!1m4!4m3!1s{project}!2s{dataset}!3s{table}"


def import_metadata(summary: ImportSummary) -> dict[str, Any]:
    """Materialization metadata for an import run (standard Dagster keys where they exist)."""
    spec = summary.spec
    loaded = summary.with_status(IntervalStatus.LOADED, IntervalStatus.ADDED)
    present = summary.with_status(*PRESENT)
    per_interval = {
        "records": [
            {
                "interval": r.suffix, "status": str(r.status), "files": r.files, "bytes": r.bytes, "rows": r.rows,
                "raw_table": r.raw_table or "-", "jobs": len(r.job_ids),
            }
            for r in summary.intervals
        ],
        "schema": [
            {"name": "interval", "type": "string"}, {"name": "status", "type": "string"},
            {"name": "files", "type": "int"}, {"name": "bytes", "type": "int"}, {"name": "rows", "type": "int"},
            {"name": "raw_table", "type": "string"}, {"name": "jobs", "type": "int"},
        ],
    }
    window_rows = sum(r.rows for r in present)
    clean = summary.clean_table
    metadata: dict[str, Any] = {
        # the clean table's size after the run (Overwrite: the snapshot; Incremental: every interval)
        c.META_ROW_COUNT: _typed(clean.rows if clean is not None else window_rows, "int"),
        c.META_ROWS_IN_WINDOW: _typed(window_rows, "int"),
        c.META_TABLE_NAME: _typed(spec.clean_table_id, "text"),
        c.META_URI: _typed(f"gs://{spec.bucket_name}/{spec.object_prefix}", "text"),
        c.META_PARTITIONS: _typed(partition_figures(summary), "json"),
        c.META_CLEAN_TABLE_URL: _typed(console_url(spec.clean_table_id), "url"),
        c.META_INTERVALS_LOADED: _typed([r.suffix for r in loaded], "json"),
        c.META_INTERVALS_SKIPPED: _typed([r.suffix for r in summary.with_status(IntervalStatus.UNCHANGED)], "json"),
        c.META_INTERVALS_RETAINED: _typed([r.suffix for r in summary.with_status(IntervalStatus.RETAINED)], "json"),
        c.META_INTERVALS_EMPTY: _typed([r.suffix for r in summary.with_status(IntervalStatus.NO_FILES)], "json"),
        c.META_FILES_MATCHED: _typed(sum(r.files for r in summary.intervals), "int"),
        c.META_FILES_LOADED: _typed(sum(r.files for r in loaded), "int"),
        c.META_FILES_IGNORED: _typed(summary.ignored, "int"),
        c.META_FILES_UNPARSEABLE: _typed(len(summary.unparseable), "int"),
        c.META_BYTES_LOADED: _typed(sum(r.bytes for r in loaded), "int"),
        c.META_JOB_IDS: _typed([j for r in loaded for j in r.job_ids], "json"),
        c.META_RAW_TABLES: _typed([r.raw_table for r in present], "json"),
        c.META_PER_INTERVAL: _typed(per_interval, "table"),
        "mode": _typed(spec.mode.value, "text"),
        "source": _typed(f"gs://{spec.bucket_name}/{spec.object_prefix}", "text"),
    }
    if clean is not None and clean.columns:
        metadata[c.META_COLUMN_SCHEMA] = _typed({"columns": [_column(col) for col in clean.columns]}, "table_schema")
    skipped = [f"gs://{spec.bucket_name}/{n}" for r in summary.intervals for n in r.skipped_files]
    if skipped:
        metadata[c.META_FILES_SKIPPED] = _typed(skipped[:200], "json")
    refused = {r.suffix: r.note for r in summary.intervals if r.note}
    if refused:
        metadata["reloads_refused"] = _typed(refused, "json")
    if summary.unparseable:
        metadata[c.META_UNPARSEABLE_NAMES] = _typed(summary.unparseable[:100], "json")
    if summary.published:
        metadata["published_interval"] = _typed(summary.published, "text")
    for phase, seconds in summary.seconds.items():
        metadata[f"{c.META_SECONDS_PREFIX}{phase}"] = _typed(seconds, "float")
    return metadata


def partition_figures(summary: ImportSummary) -> dict[str, dict[str, Any]]:
    """Each requested interval's own figures, keyed by its ISO start (the orchestrator maps it to a partition);
    :data:`~worker.core.contract.META_ARRIVAL_TO_QUERYABLE` only for the intervals this run loaded and published."""
    figures: dict[str, dict[str, Any]] = {}
    for r in summary.intervals:
        figures[r.interval_start.isoformat()] = {
            "rows": r.rows, "files": r.files, "bytes": r.bytes, "status": str(r.status),
            "raw_table": r.raw_table or None, "jobs": len(r.job_ids),
        }
        if r.arrival_to_queryable_seconds is not None:
            figures[r.interval_start.isoformat()][c.META_ARRIVAL_TO_QUERYABLE] = r.arrival_to_queryable_seconds
    return figures


def _column(column: TableColumn) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "type": column.type,
                           "constraints": {"nullable": column.mode != "REQUIRED"}}
    if column.mode == "REPEATED":
        out["type"] = f"ARRAY<{column.type}>"
    if column.description:
        out["description"] = column.description
    return out


def import_checks(summary: ImportSummary) -> list[dict[str, Any]]:
    """Asset-check results: rows loaded (ERROR), unparseable files (WARN), schema unchanged (WARN)."""
    empty = [r.suffix for r in summary.intervals if r.rows <= 0]
    changes = {r.suffix: r.schema_change for r in summary.intervals if r.schema_change}
    rows = [
        {"interval": r.suffix, "column": ch.column, "change": str(ch.change), "before": ch.before, "after": ch.after}
        for r in summary.intervals for ch in r.column_changes
    ]
    change_table = {
        "records": rows,
        "schema": [{"name": n, "type": "string"} for n in ("interval", "column", "change", "before", "after")],
    }
    return [
        {
            "check_name": c.CHECK_ROWS_LOADED,
            "passed": not empty,
            "severity": "ERROR",
            "metadata": {
                "intervals_without_rows": _typed(empty, "json"),
                "rows": _typed(sum(r.rows for r in summary.intervals), "int"),
            },
        },
        {
            "check_name": c.CHECK_NO_UNPARSEABLE_FILES,
            "passed": not summary.unparseable,
            "severity": "WARN",
            "metadata": {
                "unparseable": _typed(len(summary.unparseable), "int"),
                "names": _typed(summary.unparseable[:100], "json"),
            },
        },
        {
            "check_name": c.CHECK_SCHEMA_UNCHANGED,
            "passed": not changes and not rows,
            "severity": "WARN",
            # a table the UI shows as rows (interval, column, change, before, after); the summary lines too
            "metadata": {"column_changes": _typed(change_table, "table"), "changes": _typed(changes, "json")},
        },
        {
            "check_name": c.CHECK_NO_SKIPPED_FILES,
            "passed": not any(r.skipped_files for r in summary.intervals),
            "severity": "WARN",
            "metadata": {
                "skipped": _typed(sum(len(r.skipped_files) for r in summary.intervals), "int"),
                "files": _typed([f"gs://{summary.spec.bucket_name}/{n}" for r in summary.intervals
                                 for n in r.skipped_files][:200], "json"),
            },
        },
    ]


def import_summary_json(summary: ImportSummary) -> dict[str, Any]:
    """The standalone run's stdout: the metadata values (untyped), the checks and the data version."""
    return {
        "action": "import",
        "asset": summary.spec.name,
        "window": [summary.window_start.isoformat(), summary.window_end.isoformat()],
        "data_version": summary.data_version,
        "intervals": [
            {"interval": r.suffix, "status": str(r.status), "files": r.files, "bytes": r.bytes, "rows": r.rows,
             "raw_table": r.raw_table, "job_ids": list(r.job_ids), "reattached_jobs": r.reattached_jobs,
             "schema_change": r.schema_change, "note": r.note, "skipped_files": list(r.skipped_files),
             c.META_ARRIVAL_TO_QUERYABLE: r.arrival_to_queryable_seconds,
             "column_changes": [{"column": ch.column, "change": str(ch.change), "before": ch.before, "after": ch.after}
                                for ch in r.column_changes]}
            for r in summary.intervals
        ],
        "metadata": {k: v["raw_value"] for k, v in import_metadata(summary).items() if k not in (c.META_PER_INTERVAL, c.META_PARTITIONS)},
        "checks": [{"check_name": ch["check_name"], "passed": ch["passed"], "severity": ch["severity"]}
                   for ch in import_checks(summary)],
    }


def retention_metadata(summary: RetentionSummary) -> dict[str, Any]:
    outcome = summary.outcome
    names = [o.name for o in (outcome.plan.to_delete if outcome.dry_run else outcome.deleted)]
    metadata = {
        c.META_DRY_RUN: _typed(outcome.dry_run, "bool"),
        "cutoff": _typed(outcome.plan.cutoff.isoformat(), "text"),
        c.META_OBJECTS_DELETED: _typed(0 if outcome.dry_run else len(outcome.deleted), "int"),
        # deleted bytes stay billed on a bucket with soft delete or versioning: freed is 0 there, None unknown
        c.META_BYTES_DELETED: _typed(0 if outcome.dry_run else outcome.bytes_deleted, "int"),
        c.META_BYTES_FREED: _typed(0 if outcome.dry_run else outcome.bytes_freed, "int"),
        c.META_BYTES_FREED_NOTE: _typed("" if outcome.dry_run else outcome.freed_note, "text"),
        "objects_to_delete" if outcome.dry_run else "deleted_names": _typed(names[:200], "json"),
        "kept_changed_since_load": _typed([o.name for o in outcome.kept_changed][:200], "json"),
    }
    if summary.spec.archive_target is not None:
        metadata.update(_archive_metadata(summary, target=summary.spec.archive_target))
    if outcome.plan.markers or outcome.markers_deleted:  # complete_when.marker_match: the markers deleted after the data
        markers = outcome.plan.markers if outcome.dry_run else outcome.markers_deleted
        metadata["markers_to_delete" if outcome.dry_run else "markers_deleted"] = _typed([o.name for o in markers][:200], "json")
    for phase, seconds in summary.seconds.items():
        metadata[f"{c.META_SECONDS_PREFIX}{phase}"] = _typed(seconds, "float")
    return metadata


def _archive_metadata(summary: RetentionSummary, *, target: ArchiveTarget) -> dict[str, Any]:
    """``retention_action: archive``: what moved (a dry run: what would move, source and destination URIs)."""
    outcome = summary.outcome
    if outcome.dry_run:
        moves = plan_moves(outcome.plan.to_delete, bucket=summary.spec.bucket_name, target=target)
        return {"objects_to_archive": _typed([{"source": m.source_uri, "destination": m.target_uri}
                                              for m in moves][:200], "json"),
                "bytes_to_archive": _typed(sum(m.size for m in moves), "int")}
    trusted = outcome.archive.trusted if outcome.archive is not None else []
    untrusted = outcome.archive.untrusted if outcome.archive is not None else []
    return {
        c.META_OBJECTS_ARCHIVED: _typed(len(trusted), "int"),
        c.META_BYTES_ARCHIVED: _typed(sum(r.obj.size for r in trusted), "int"),
        c.META_ARCHIVE_UNTRUSTED: _typed([r.note for r in untrusted][:200], "json"),
    }


def retention_summary_json(summary: RetentionSummary) -> dict[str, Any]:
    return {"action": "retention", "asset": summary.spec.name, "as_of": summary.as_of.isoformat(),
            **{k: v["raw_value"] for k, v in retention_metadata(summary).items()}}


class ThreadSafeReporter:
    """A :class:`Reporter` that forwards to another one call by call, under a lock: the intervals of a run
    report from their own threads (:mod:`worker.interval_rounds`); each line stays whole and the wrapped
    reporter never runs twice at once. Lines of different intervals may interleave."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter.wrapped if isinstance(reporter, ThreadSafeReporter) else reporter
        self._lock = threading.Lock()

    @property
    def wrapped(self) -> Reporter:
        return self._reporter

    def info(self, message: str) -> None:
        with self._lock:
            self._reporter.info(message)

    def warning(self, message: str) -> None:
        with self._lock:
            self._reporter.warning(message)


class LogReporter:
    """Standalone progress: one line per event on stderr (stdout is kept for the JSON summary)."""

    def __init__(self) -> None:
        self._log = logging.getLogger("worker")
        if not self._log.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self._log.addHandler(handler)
            self._log.setLevel(logging.INFO)

    def info(self, message: str) -> None:
        self._log.info(message)

    def warning(self, message: str) -> None:
        self._log.warning(message)


class PipesReporter:
    """Progress lines to the Dagster UI through the Pipes context's logger."""

    def __init__(self, pipes_context: Any) -> None:
        self._log = pipes_context.log

    def info(self, message: str) -> None:
        self._log.info(message)

    def warning(self, message: str) -> None:
        self._log.warning(message)
