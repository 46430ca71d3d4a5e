"""What a worker run reports: the status of each requested interval and the run's summaries.

Typed data only (no I/O): :mod:`worker.run` fills them, :mod:`worker.reporting` turns them into
Dagster metadata and check results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from worker.core.contract import IntervalStatus
from worker.core.spec import ImportSpec
from worker.retention import RetentionOutcome
from worker.schema_changes import ColumnChange


@dataclass(frozen=True)
class TableColumn:
    """One column of a BigQuery table, as the asset page's column schema shows it."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str | None = None


@dataclass(frozen=True)
class CleanTableState:
    """The clean table after a run: what ``dagster/row_count`` and ``dagster/column_schema`` report."""

    table_id: str
    rows: int
    columns: tuple[TableColumn, ...] = ()


@dataclass
class IntervalResult:
    """What happened to one requested interval."""

    interval_start: datetime
    status: IntervalStatus
    suffix: str
    files: int = 0
    bytes: int = 0
    rows: int = 0
    job_ids: tuple[str, ...] = ()
    reattached_jobs: int = 0
    raw_table: str = ""
    digest: str = ""
    schema_change: str | None = None
    #: Objects the load skipped (``on_bad_file: skip``): BigQuery could not read them.
    skipped_files: tuple[str, ...] = ()
    #: Why a requested change was not applied (a sealed interval whose load settings changed).
    note: str | None = None
    #: Column differences from the previous interval and what publishing changed in the clean table.
    column_changes: tuple[ColumnChange, ...] = ()
    error: str | None = None
    #: The failure is transient (a re-run is expected to succeed): see :class:`TransientError`.
    transient: bool = False
    previously_loaded: bool = False


@dataclass
class ImportSummary:
    spec: ImportSpec
    window_start: datetime
    window_end: datetime
    intervals: list[IntervalResult] = field(default_factory=list)
    listed: int = 0
    ignored: int = 0
    outside_window: int = 0
    unparseable: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    published: str | None = None
    publish_job_id: str | None = None
    publish_error: str | None = None
    #: The clean table after the run; None when it does not exist (nothing published yet).
    clean_table: CleanTableState | None = None

    def with_status(self, *statuses: IntervalStatus) -> list[IntervalResult]:
        return [r for r in self.intervals if r.status in statuses]

    @property
    def data_version(self) -> str:
        """Derived from the loaded object generations of the window: equal data, equal version."""
        hasher = hashlib.sha256()
        for result in sorted(self.intervals, key=lambda r: r.interval_start):
            hasher.update(f"{result.suffix}:{result.digest};".encode())
        return hasher.hexdigest()[:24]


@dataclass
class RetentionSummary:
    spec: ImportSpec
    as_of: datetime
    outcome: RetentionOutcome
    seconds: dict[str, float] = field(default_factory=dict)


