"""What a worker run reports: its results as typed data (no I/O).

:class:`LoadOutcome` is what loading one interval into its raw table gave (:func:`worker.loading.load_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import bigquery


@dataclass(frozen=True)
class LoadOutcome:
    """One interval's load into its raw table: rows, the jobs that did it, the raw table's schema."""

    rows: int
    job_ids: tuple[str, ...]
    reattached: int
    schema: tuple[bigquery.SchemaField, ...]
    #: The staging table the raw table was copied from (another attempt's when this one reattached).
    copied_from: str | None = None
    #: Object names the load skipped (``on_bad_file: skip``): BigQuery's load error named them, or no load
    #: job can read them by URI (:func:`worker.planning.unloadable_reason`).
    skipped: tuple[str, ...] = ()
    #: What the run must say about this load (one line each): unloadable names, Avro raw types kept.
    warnings: tuple[str, ...] = ()
