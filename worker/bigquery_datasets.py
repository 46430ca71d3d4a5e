"""Dataset administration: the raw and clean datasets exist where the spec says, and the tables the worker
writes never keep an expiry they inherited from their dataset's default.

A dataset is read before it is created (``datasets.insert`` checks a project-level permission first), and a
dataset default expiry (the sandbox's 60 days) is accepted: each table the worker creates sets its own
(:mod:`worker.table_expiry`); :func:`repair_table_expiry` mends tables an earlier release let inherit it.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.core.errors import WorkerError, explain_bigquery_error
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.side_by_side import side_by_side
from worker.table_expiry import repair


def ensure_datasets(client: bigquery.Client, spec: ImportSpec, *, budget: RetryBudget) -> None:
    """Make sure the raw and clean datasets exist in ``spec.location``.

    Each dataset is read first and created only when missing: ``datasets.insert`` checks the
    project-level ``bigquery.datasets.create`` permission before it checks existence, so a worker
    granted roles on existing datasets only must never call it for a dataset that exists.

    A dataset with a default table or partition expiry (the sandbox's 60 days) is accepted: every table
    the worker creates in it sets its own expiry (:mod:`worker.table_expiry`).

    Raises:
        WorkerError: the dataset exists in another location than ``spec.location`` (naming both),
            or BigQuery refused (naming the dataset and the grant).
    """
    names = dict.fromkeys((spec.raw_dataset_name, spec.clean_dataset_name))
    side_by_side(*(lambda name=name: _ensure_dataset(client, spec, f"{spec.project_id}.{name}", budget=budget)
                   for name in names))


def _ensure_dataset(client: bigquery.Client, spec: ImportSpec, dataset_id: str, *, budget: RetryBudget) -> None:
    """One dataset of :func:`ensure_datasets`: read, created when missing, its location checked."""
    try:
        try:
            existing = client.get_dataset(dataset_id, retry=budget.retry, timeout=budget.request_timeout)
        except gexc.NotFound:
            dataset = bigquery.Dataset(dataset_id)
            dataset.location = spec.location
            client.create_dataset(dataset, exists_ok=True, retry=budget.retry, timeout=budget.request_timeout)
            return
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=dataset_id, action="reading or creating the dataset") from exc
    if existing.location and existing.location.lower() != spec.location.lower():
        raise WorkerError(
            f"BigQuery dataset {dataset_id} is in location {existing.location!r} but the spec of {spec.name!r} "
            f"says location {spec.location!r}: set location to {existing.location!r} (load jobs must run where "
            "the dataset is), or use another dataset."
        )


def repair_table_expiry(client: bigquery.Client, spec: ImportSpec, *, budget: RetryBudget) -> list[str]:
    """Remove the expiry an earlier release's raw tables and clean table inherited from their dataset's default
    (one tables.list of the raw dataset, one tables.get of the clean table); one warning line per table repaired.

    Raw tables with ``raw_table_expiration_days`` keep theirs (each load sets it); staging tables keep their day.

    Raises:
        WorkerError: BigQuery refused (naming the raw dataset and the grant).
    """
    raw_prefix = f"{spec.destination_table}__"
    tables: list[tuple[bigquery.Table, datetime | None]] = []
    try:
        if spec.raw_table_expiration_days is None:
            listed = client.list_tables(f"{spec.project_id}.{spec.raw_dataset_name}", page_size=1000,
                                        retry=budget.retry, timeout=budget.request_timeout)
            for item in listed:
                if item.table_id.startswith(raw_prefix) and "__staging_" not in item.table_id and item.expires:
                    tables.append((client.get_table(item.reference, retry=budget.retry,
                                                    timeout=budget.request_timeout), None))
        with contextlib.suppress(gexc.NotFound):
            tables.append((client.get_table(spec.clean_table_id, retry=budget.retry,
                                            timeout=budget.request_timeout), None))
        return repair(client, tables, budget=budget)
    except gexc.GoogleAPIError as exc:
        raise explain_bigquery_error(exc, table=f"{spec.project_id}.{spec.raw_dataset_name}",
                                     action="checking the tables' expiry") from exc
