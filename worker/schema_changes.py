"""Schema differences between loaded intervals, for the ``schema_unchanged`` check."""

from __future__ import annotations

from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.clients import RetryBudget
from worker.ledger import Ledger
from worker.spec import ImportSpec


def schema_change_from_previous(bq: bigquery.Client, spec: ImportSpec, *, ledger: Ledger, start: datetime,
                   schema: tuple[bigquery.SchemaField, ...], budget: RetryBudget) -> str | None:
    """How this interval's columns differ from the previous loaded interval's, or None when they match."""
    previous = ledger.previous_interval(start)
    if previous is None:
        return None
    try:
        before = bq.get_table(spec.raw_table_id(previous), retry=budget.retry, timeout=budget.request_timeout).schema
    except gexc.NotFound:  # the previous raw table was dropped by someone: nothing to compare
        return None
    old = [(f.name, f.field_type, f.mode) for f in before]
    new = [(f.name, f.field_type, f.mode) for f in schema]
    if old == new:
        return None
    added = [n for n, *_ in new if n not in {o[0] for o in old}]
    removed = [n for n, *_ in old if n not in {x[0] for x in new}]
    return (f"columns differ from interval {spec.interval.table_suffix(previous)}: added {added}, removed {removed}, "
            f"before {old}, now {new}")
