"""Loading: BigQuery load jobs read the interval's ``gs://`` URIs directly into its raw table.

File data never passes through the worker. Each batch of up to 10,000 URIs is one
load job into a staging table private to this set of object generations; a copy
job (atomic) then replaces the raw table, and the staging table is dropped. A
failure at any step leaves the raw table as it was; the staging table is then kept
(with a one-day expiry) so a re-run reattaches to the batches that already loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.errors import WorkerError, explain_bigquery_error
from worker.jobs import find_succeeded, run_or_reattach
from worker.planning import IntervalLoadPlan
from worker.spec import ImportSpec, SourceFormat
from worker.sql import quote_table


@dataclass(frozen=True)
class LoadOutcome:
    rows: int
    job_ids: tuple[str, ...]
    reattached: int
    schema: tuple[bigquery.SchemaField, ...]


def ensure_datasets(client: bigquery.Client, spec: ImportSpec, *, retry=None) -> None:
    """Create the raw and clean datasets in ``spec.location`` when missing.

    ``retry`` bounds how long an unreachable endpoint is retried (this is a run's first BigQuery call).
    """
    for dataset_name in dict.fromkeys((spec.raw_dataset_name, spec.clean_dataset_name)):
        dataset = bigquery.Dataset(f"{spec.project_id}.{dataset_name}")
        dataset.location = spec.location
        try:
            client.create_dataset(dataset, exists_ok=True, **({'retry': retry} if retry else {}))
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=f"{spec.project_id}.{dataset_name}", action="creating the dataset") from exc


def load_job_config(spec: ImportSpec, *, first_batch: bool) -> bigquery.LoadJobConfig:
    """The load settings the spec asks for (format, schema or autodetect, CSV options, bad records)."""
    config = bigquery.LoadJobConfig(
        source_format=spec.format.value,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE if first_batch else bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        max_bad_records=spec.max_bad_records,
        labels={"gcs_import_asset": spec.name.lower()[:63]},
    )
    if spec.schema is not None:
        config.schema = [bigquery.SchemaField(f.name, f.type, mode=f.mode) for f in spec.schema]
    elif spec.format in (SourceFormat.CSV, SourceFormat.NEWLINE_DELIMITED_JSON):
        config.autodetect = True
    if spec.format is SourceFormat.CSV:
        config.skip_leading_rows = spec.csv_header_rows
        config.field_delimiter = spec.csv_delimiter
    return config


def load_interval(
    client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *,
    on_job_done: Callable[[str, bool], None] | None = None,
) -> LoadOutcome:
    """Run the plan's load jobs and the copy into the raw table; return its row count and schema.

    Raises:
        WorkerError: a load or copy job failed (the message names the interval, the
            table and BigQuery's reasons, usually with the offending ``gs://`` file).
    """
    job_ids: list[str] = []
    reattached = 0
    try:
        finished_copy = find_succeeded(client, plan.copy_job_base(spec=spec)) if _exists(client, plan.raw_table_id) else None
        if finished_copy is not None:
            # A retry of a load that already reached the raw table: nothing to run again.
            if on_job_done:
                on_job_done(finished_copy.job_id, True)
            return _outcome(client, plan, job_ids=(finished_copy.job_id,), reattached=1)
        # Finished load jobs are only reusable while the staging table they filled still exists.
        reuse_loads = _exists(client, plan.staging_table_id)
        for index, uris in enumerate(plan.batches):
            config = load_job_config(spec, first_batch=index == 0)

            def start(job_id: str, uris=uris, config=config) -> bigquery.LoadJob:
                return client.load_table_from_uri(list(uris), plan.staging_table_id, job_id=job_id,
                                                  job_config=config, location=spec.location)

            job, again = run_or_reattach(client, plan.load_job_base(index, spec=spec), start, reuse_succeeded=reuse_loads)
            job_ids.append(job.job_id)
            reattached += again
            if on_job_done:
                on_job_done(job.job_id, again)

        def start_copy(job_id: str) -> bigquery.CopyJob:
            return client.copy_table(plan.staging_table_id, plan.raw_table_id, job_id=job_id, location=spec.location,
                                     job_config=bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE"))

        copy_job, _ = run_or_reattach(client, plan.copy_job_base(spec=spec), start_copy)
        job_ids.append(copy_job.job_id)
    except gexc.GoogleAPIError as exc:
        _expire_later(client, plan.staging_table_id)
        raise WorkerError(
            f"Loading interval {plan.suffix} of {spec.name!r} ({len(plan.objects)} files, first "
            f"gs://{spec.bucket_name}/{plan.objects[0].name}) into {plan.raw_table_id} failed: "
            f"{explain_bigquery_error(exc, table=plan.staging_table_id, action='loading').args[0]} "
            "Nothing was published and no GCS object was deleted; fix the file or the schema and re-run."
        ) from exc
    client.delete_table(plan.staging_table_id, not_found_ok=True)
    return _outcome(client, plan, job_ids=tuple(job_ids), reattached=reattached)


def _exists(client: bigquery.Client, table_id: str) -> bool:
    try:
        client.get_table(table_id)
    except gexc.NotFound:
        return False
    return True


def _outcome(client: bigquery.Client, plan: IntervalLoadPlan, *, job_ids: tuple[str, ...], reattached: int) -> LoadOutcome:
    table = client.get_table(plan.raw_table_id)
    # COUNT(*) reads table metadata only (0 bytes billed); table.num_rows would do in BigQuery, but
    # bqemulator keeps a stale num_rows after a WRITE_TRUNCATE copy onto an existing table.
    count_sql = f"SELECT COUNT(*) AS n FROM {quote_table(plan.raw_table_id)}"
    rows = next(iter(client.query(count_sql).result()))["n"]
    return LoadOutcome(rows=int(rows), job_ids=job_ids, reattached=reattached, schema=tuple(table.schema))


def _expire_later(client: bigquery.Client, table_id: str) -> None:
    """Keep a failed run's staging table for a day (so a re-run can reattach), then let BigQuery drop it."""
    try:
        table = client.get_table(table_id)
        table.expires = datetime.now(UTC) + timedelta(days=1)
        client.update_table(table, ["expires"])
    except gexc.GoogleAPIError:
        pass  # best effort: the staging table may not exist, and the real error is being raised
