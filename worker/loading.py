"""Loading: BigQuery load jobs read the interval's ``gs://`` URIs directly into its raw table.

File data never passes through the worker. Each batch of up to 10,000 URIs is one
load job into a staging table private to this worker attempt (concurrent attempts
never share one); a copy job (atomic) then replaces the raw table — or appends to it
when objects are added to a sealed interval — and the staging table is dropped.
Staging tables carry a one-day expiry from their first load, so a killed worker
never leaves one behind for good. The copy job's id is deterministic per load, so a
retried or concurrent worker reuses a copy that already ran instead of writing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_jobs import find_succeeded, run_or_reattach
from worker.bigquery_queries import count_rows
from worker.checkpoints import checkpoint
from worker.core.errors import WorkerError, explain_bigquery_error
from worker.core.formats import SourceFormat
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, OnBadFile
from worker.planning import IntervalLoadPlan, unloadable_reason
from worker.table_expiry import repair, settle


@dataclass(frozen=True)
class LoadOutcome:
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


#: How long a staging table outlives a worker that could not drop it (a killed worker, an outage).
STAGING_EXPIRY = timedelta(days=1)


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
    for dataset_name in dict.fromkeys((spec.raw_dataset_name, spec.clean_dataset_name)):
        dataset_id = f"{spec.project_id}.{dataset_name}"
        try:
            try:
                existing = client.get_dataset(dataset_id, retry=budget.retry, timeout=budget.request_timeout)
            except gexc.NotFound:
                dataset = bigquery.Dataset(dataset_id)
                dataset.location = spec.location
                client.create_dataset(dataset, exists_ok=True, retry=budget.retry, timeout=budget.request_timeout)
                continue
        except gexc.GoogleAPIError as exc:
            raise explain_bigquery_error(exc, table=dataset_id, action="reading or creating the dataset") from exc
        if existing.location and existing.location.lower() != spec.location.lower():
            raise WorkerError(
                f"BigQuery dataset {dataset_id} is in location {existing.location!r} but the spec of {spec.name!r} "
                f"says location {spec.location!r}: set location to {existing.location!r} (load jobs must run where "
                "the dataset is), or use another dataset."
            )


def staging_table(spec: ImportSpec, plan: IntervalLoadPlan, *, now: datetime) -> bigquery.Table:
    """The attempt's private staging table, with an expiry so a killed worker never leaves it behind."""
    table = bigquery.Table(plan.staging_table_id,
                           schema=[bigquery.SchemaField(f.name, f.type, mode=f.mode) for f in spec.schema or ()])
    table.expires = now + STAGING_EXPIRY
    table.labels = {"gcs_import_staging": "true"}
    return table


#: BigQuery types an Avro logical type becomes with ``useAvroLogicalTypes`` (raw: INTEGER), see
#: https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types
_AVRO_LOGICAL_TYPES = frozenset({"DATE", "TIME", "DATETIME", "TIMESTAMP"})


def avro_logical_types(spec: ImportSpec) -> bool:
    """Whether Avro loads of ``spec`` convert logical types (``useAvroLogicalTypes``).

    ``load_options.use_avro_logical_types`` when set. Unset: with an explicit schema, its types decide (a
    logical-typed field loads into a TIMESTAMP/DATE/TIME/DATETIME column only with logical types, into an
    INTEGER column only without), so a schema with none of those columns keeps the raw types it was written
    for; without a schema, logical types (an existing clean table that holds the raw types is kept so by
    :func:`load_interval`).
    """
    option = spec.load_options.use_avro_logical_types
    if option is not None:
        return option
    if spec.schema is not None:
        return any(f.type in _AVRO_LOGICAL_TYPES for f in spec.schema)
    return True


def load_job_config(spec: ImportSpec, *, first_batch: bool, avro_logical: bool | None = None) -> bigquery.LoadJobConfig:
    """The load settings the spec asks for (format, schema or autodetect, CSV options, bad records);
    ``avro_logical`` overrides :func:`avro_logical_types` for an Avro load."""
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
    spec.load_options.apply(config)
    if spec.format is SourceFormat.AVRO:
        config.use_avro_logical_types = avro_logical_types(spec) if avro_logical is None else avro_logical
    return config


def load_interval(
    client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *, budget: RetryBudget,
    on_job_done: Callable[[str, bool], None] | None = None,
    before_copy: Callable[[tuple[str, ...]], None] | None = None,
) -> LoadOutcome:
    """Run the plan's load jobs and the copy into the raw table; return its row count and schema.

    A copy that already succeeded for this load (a retried or concurrent worker) is reused, so
    the raw table is never written twice for one load. Load jobs write the attempt's private
    staging table; the copy replaces the raw table, or appends to it for an ``append`` plan.

    Raises:
        WorkerError: a load or copy job failed (the message names the interval, the table,
            BigQuery's reasons, usually with the offending ``gs://`` file, and the fix).
    """
    job_ids: list[str] = []
    reattached = 0
    retry, timeout = budget.retry, budget.request_timeout
    step = "looking up earlier jobs of this load"
    try:
        finished_copy = _find_finished_copy(client, spec, plan, budget=budget)
        if finished_copy is not None:
            # A retry of a load that already reached the raw table: nothing to run again.
            if on_job_done:
                on_job_done(finished_copy.job_id, True)
            return _outcome(client, spec, plan, job_ids=(finished_copy.job_id,), reattached=1, budget=budget,
                            copied_from=copy_source(finished_copy))
        warnings: list[str] = []
        if plan.unloadable:
            # Never sent as a URI (BigQuery would read other objects): fail, or skip them like unreadable files.
            named = "; ".join(f"gs://{spec.bucket_name}/{n}: {unloadable_reason(n)}" for n in plan.unloadable[:5])
            more = f" and {len(plan.unloadable) - 5} more" if len(plan.unloadable) > 5 else ""
            if spec.on_bad_file is not OnBadFile.skip:
                raise WorkerError(
                    f"Interval {plan.suffix} of {spec.name!r} has {len(plan.unloadable)} object(s) no BigQuery load job "
                    f"can read by name ({named}{more}): nothing was loaded or published and no GCS object was deleted; "
                    "rename them without '*' and '//' (e.g. gcloud storage mv), or set on_bad_file: skip to load the "
                    "interval without them.")
            warnings.append(f"not loaded, kept in GCS and never deleted: {named}{more}; rename them without '*' and "
                            "'//' to load them.")
        skipped: list[str] = list(plan.unloadable)
        wrote_first = False

        def run_batches(avro_logical: bool | None = None, variant: str = "") -> None:
            nonlocal step, wrote_first, reattached
            step = "creating the staging table"
            if spec.schema:
                client.create_table(staging_table(spec, plan, now=datetime.now(UTC)), retry=retry, timeout=timeout)
            for index, uris in enumerate(plan.batches):
                step = f"loading batch {index + 1} of {len(plan.batches)}"
                job, again = _load_batch(client, spec, plan, index=index, uris=uris, truncate=not wrote_first,
                                         skipped=skipped, budget=budget, avro_logical=avro_logical, variant=variant)
                if job is None:
                    continue  # every file of the batch was skipped
                if not wrote_first:
                    _expire_later(client, plan.staging_table_id, budget=budget)
                    wrote_first = True
                job_ids.append(job.job_id)
                reattached += again
                checkpoint("load.batch_loaded")
                if on_job_done:
                    on_job_done(job.job_id, again)

        run_batches()
        step = "comparing Avro column types with the clean table"
        kept_raw = _clean_columns_holding_raw_avro(client, spec, plan, budget=budget) if wrote_first else []
        if kept_raw:
            # An earlier release loaded these columns as INTEGER: loading them as TIMESTAMP/DATE now would be a
            # column type change the clean table refuses. Load the interval again with the raw types.
            client.delete_table(plan.staging_table_id, not_found_ok=True, retry=retry, timeout=timeout)
            job_ids.clear()
            skipped[:], wrote_first = list(plan.unloadable), False
            run_batches(avro_logical=False, variant="_avroraw")
            warnings.append(
                f"{spec.clean_table_id} holds Avro logical-typed column(s) {', '.join(kept_raw)} as INTEGER (loaded "
                "without useAvroLogicalTypes by an earlier release), so this interval was loaded with the raw Avro types "
                "too. To keep them and skip this check, set load_options.use_avro_logical_types: false; to migrate, "
                "convert those clean-table columns (e.g. TIMESTAMP_MICROS(col), DATE_FROM_UNIX_DATE(col)) and set "
                "load_options.use_avro_logical_types: true (open intervals then reload).")
        if not wrote_first:
            raise WorkerError(
                f"Every file of interval {plan.suffix} of {spec.name!r} is unreadable by BigQuery ({len(skipped)} skipped, "
                f"e.g. {', '.join(f'gs://{spec.bucket_name}/{n}' for n in skipped[:3])}): nothing was loaded or published "
                "and no GCS object was deleted; fix the files (or rename the ones named with '*' or '//') and re-run."
            )

        if before_copy:
            step = "recording the pending load"
            before_copy(tuple(skipped))  # the intent, durable before the raw table can change (see worker.ledger)
        step = "giving the staging table the raw table's clustering"
        _match_raw_clustering(client, plan, budget=budget)
        step = "copying the staging table into the raw table"
        copy_config = raw_copy_config(spec, append=plan.append, now=datetime.now(UTC))

        def start_copy(job_id: str) -> bigquery.CopyJob:
            return client.copy_table(plan.staging_table_id, plan.raw_table_id, job_id=job_id, location=spec.location,
                                     job_config=copy_config, retry=retry, timeout=timeout)

        copy_job, _ = run_or_reattach(client, plan.copy_job_base(spec=spec), start_copy, budget=budget)
        job_ids.append(copy_job.job_id)
        checkpoint("load.copied")
        step = "dropping the staging table"
        client.delete_table(plan.staging_table_id, not_found_ok=True, retry=retry, timeout=timeout)
        step = "reading back the raw table's expiry and counting its rows"
        return _outcome(client, spec, plan, job_ids=tuple(job_ids), reattached=reattached, budget=budget,
                        copied_from=copy_source(copy_job), skipped=tuple(skipped), warnings=tuple(warnings))
    except gexc.GoogleAPIError as exc:
        explained = explain_bigquery_error(exc, table=plan.staging_table_id, action="loading")
        raise type(explained)(  # keeps ServiceUnreachable, which stops the run
            f"Loading interval {plan.suffix} of {spec.name!r} ({len(plan.objects)} files, first "
            f"gs://{spec.bucket_name}/{plan.objects[0].name}) into {plan.raw_table_id} failed while {step}: "
            f"{explained.args[0]} Nothing was published and no GCS object was deleted; {_advice(exc)}"
        ) from exc


def _match_raw_clustering(client: bigquery.Client, plan: IntervalLoadPlan, *, budget: RetryBudget) -> None:
    """Give the (private) staging table the existing raw table's clustering before copying it there.

    BigQuery refuses a copy onto an existing table whose partitioning or clustering differs from the
    source's (https://cloud.google.com/bigquery/docs/managing-partitioned-tables#copy_partitioned_tables), and
    a raw table published over a clustered Overwrite clean table was given that clustering
    (:func:`worker.publishing._match_destination_clustering`): without this a reload or an addition of
    that interval could never be copied into it.
    """
    try:
        raw = client.get_table(plan.raw_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return  # the copy creates it with the staging table's layout
    if not raw.clustering_fields:
        return
    staging = client.get_table(plan.staging_table_id, retry=budget.retry, timeout=budget.request_timeout)
    if staging.clustering_fields != raw.clustering_fields:
        staging.clustering_fields = raw.clustering_fields
        client.update_table(staging, ["clustering_fields"], retry=budget.retry, timeout=budget.request_timeout)


#: Load retries of one batch without the files its errors named, before the interval fails anyway.
MAX_SKIP_ROUNDS = 5


def _load_batch(client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *, index: int, uris: tuple[str, ...],
                truncate: bool, skipped: list[str], budget: RetryBudget, avro_logical: bool | None = None,
                variant: str = "") -> tuple[bigquery.LoadJob | None, bool]:
    """Load one batch; with ``on_bad_file: skip``, again without the files a failed load names
    (appended to ``skipped``).

    The job id of a reduced batch names the files left out (a hash), so a retried worker that
    reattaches to it has found the same files bad; a reduced batch never reuses the full batch's id.
    Returns ``(job or None when every file was skipped, reattached)``.
    """
    retry, timeout = budget.retry, budget.request_timeout
    config = load_job_config(spec, first_batch=truncate, avro_logical=avro_logical)
    left_out: list[str] = []
    for _ in range(MAX_SKIP_ROUNDS + 1):
        if not uris:
            return None, False
        base = plan.load_job_base(index, spec=spec) + variant
        if left_out:
            base = f"{base}_skip{hashlib.sha256('|'.join(sorted(left_out)).encode()).hexdigest()[:10]}"

        started: list[bigquery.LoadJob] = []

        def start(job_id: str, uris=uris, started=started) -> bigquery.LoadJob:
            job = client.load_table_from_uri(list(uris), plan.staging_table_id, job_id=job_id,
                                             job_config=config, location=spec.location, retry=retry, timeout=timeout)
            started.append(job)
            return job

        try:
            return run_or_reattach(client, base, start, budget=budget)
        except gexc.GoogleAPIError as exc:
            if spec.on_bad_file is not OnBadFile.skip:
                raise
            # The exception carries the job's errorResult only; the file is named in the job's errors[].
            errors = [*(started[-1].errors or [] if started else []), *(getattr(exc, "errors", None) or [])]
            prefix = f"gs://{spec.bucket_name}/"
            bad = set(named_files(errors, [u.removeprefix(prefix) for u in uris], bucket=spec.bucket_name))
            if not bad:
                raise  # nothing the error names: not a bad file (or not one we can tell)
            left_out += sorted(bad)
            skipped += sorted(bad)
            uris = tuple(u for u in uris if u.removeprefix(prefix) not in bad)
    raise WorkerError(f"Interval {plan.suffix}: more than {MAX_SKIP_ROUNDS} rounds of unreadable files in batch "
                      f"{index + 1} ({len(left_out)} skipped so far): fix the files and re-run.")


def named_files(errors: Sequence[dict], names: Sequence[str], *, bucket: str) -> list[str]:
    """The object names among ``names`` that a failed load job's ``errors`` name as unreadable.

    Only ``invalid`` errors count (a data error; an internal or access error says nothing about the
    file). BigQuery names the file by its ``gs://bucket/name`` URI in the error's message and its
    ``location``; messages are read first and ``location`` only when no message names a file, so a
    ``location`` naming another file of the batch (bqemulator puts the batch's first URI there, and
    names the file by its path in the GCS emulator's store, ``.../bucket/name``) never makes a
    readable file skipped. A name counts only with its bucket in front, never as a suffix of another.
    """
    invalid = [e for e in errors if isinstance(e, dict) and e.get("reason") == "invalid"]
    messages = "\n".join(str(e.get("message") or "") for e in invalid)
    locations = {str(e.get("location") or "") for e in invalid}
    found = [n for n in names
             if re.search(r"(?:gs://|/)" + re.escape(f"{bucket}/{n}") + r"(?=$|[\s'\",;:)\]])", messages)]
    return found or [n for n in names if f"gs://{bucket}/{n}" in locations]


def _advice(exc: Exception) -> str:
    """What to do about a failed load, by its cause (only data errors are the files' fault)."""
    if isinstance(exc, gexc.RetryError):
        return "re-run when BigQuery is reachable."
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return "fix the grants, then re-run."
    if isinstance(exc, gexc.NotFound):
        return "a table or job this load used disappeared (dropped by hand, or by a concurrent run): re-run."
    reasons = {e.get("reason") for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict)}
    if reasons & {"invalid", "invalidQuery"} or isinstance(exc, gexc.BadRequest):
        return "fix the file or the schema and re-run."
    return "re-run; if it fails again, inspect the job ids above with bq show -j."


def table_exists(client: bigquery.Client, table_id: str, *, budget: RetryBudget) -> bool:
    """Whether ``table_id`` exists (one metadata read)."""
    try:
        client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return False
    return True


def _find_finished_copy(client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *,
                       budget: RetryBudget) -> bigquery.CopyJob | None:
    """The copy of this load that already reached the raw table, if one ran (a crashed or concurrent attempt)."""
    if not plan.append and not table_exists(client, plan.raw_table_id, budget=budget):
        return None  # the raw table was dropped since: its copy is history
    return find_succeeded(client, plan.copy_job_base(spec=spec), budget=budget)


def copy_source(job: bigquery.CopyJob) -> str | None:
    """``project.dataset.table`` a copy job read from (for ours: the attempt's staging table)."""
    sources = getattr(job, "sources", None) or []
    return f"{sources[0].project}.{sources[0].dataset_id}.{sources[0].table_id}" if sources else None


def raw_table_contents(client: bigquery.Client, table_id: str, *,
                       budget: RetryBudget) -> tuple[int, tuple[bigquery.SchemaField, ...]]:
    """``(row count, schema)`` of a raw table, as the ledger records and the publish step reads them."""
    table = client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    return count_rows(client, table_id, budget=budget), tuple(table.schema)


def _outcome(client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *, job_ids: tuple[str, ...],
             reattached: int, budget: RetryBudget, copied_from: str | None, skipped: tuple[str, ...] = (),
             warnings: tuple[str, ...] = ()) -> LoadOutcome:
    """Read the raw table back: its expiry brought to the spec's decision (a copy that created it gave it the
    dataset's default, which a copy cannot remove; :func:`raw_copy_config`), its row count and schema."""
    table = client.get_table(plan.raw_table_id, retry=budget.retry, timeout=budget.request_timeout)
    settle(client, table, expires=raw_table_expiry(spec, now=datetime.now(UTC)), budget=budget)
    rows = count_rows(client, plan.raw_table_id, budget=budget)
    return LoadOutcome(rows=rows, job_ids=job_ids, reattached=reattached, schema=tuple(table.schema),
                       copied_from=copied_from, skipped=skipped, warnings=warnings)


def raw_copy_config(spec: ImportSpec, *, append: bool, now: datetime) -> bigquery.CopyJobConfig:
    """The staging-to-raw copy: replace (or append to) the raw table, and give it the spec's expiry.

    With ``raw_table_expiration_days`` the copy sets it (``destinationExpirationTime``,
    https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy): no patch per
    interval. Without, a copy cannot say "never" (a table it creates takes the dataset's default, if any):
    :func:`_outcome` reads the table back and removes such an expiry. Either way the raw table never keeps
    the staging table's one-day expiry, whether or not a copy carries it over (BigQuery does not say).
    """
    config = bigquery.CopyJobConfig(write_disposition="WRITE_APPEND" if append else "WRITE_TRUNCATE")
    expires = raw_table_expiry(spec, now=now)
    if expires is not None:
        config.destination_expiration_time = expires.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return config


def repair_table_expiry(client: bigquery.Client, spec: ImportSpec, *, budget: RetryBudget) -> list[str]:
    """Remove the expiry an earlier release's raw tables and clean table inherited from their dataset's default
    (one tables.list of the raw dataset, one tables.get of the clean table); one warning line per table repaired.

    Raw tables with ``raw_table_expiration_days`` keep theirs (each load sets it); staging tables keep their day.
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


def _clean_columns_holding_raw_avro(client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *,
                                    budget: RetryBudget) -> list[str]:
    """Columns the staging table got as logical types (DATE, TIME, DATETIME, TIMESTAMP) that the existing clean
    table holds as INTEGER: an Avro feed an earlier release loaded without ``useAvroLogicalTypes``.

    Only for Avro loads that chose logical types themselves (no ``load_options.use_avro_logical_types``, no
    explicit schema): what the option or the schema says is what the user asked for.
    """
    if (spec.format is not SourceFormat.AVRO or spec.load_options.use_avro_logical_types is not None
            or spec.schema is not None):
        return []
    try:
        clean = client.get_table(spec.clean_table_id, retry=budget.retry, timeout=budget.request_timeout)
    except gexc.NotFound:
        return []
    staging = client.get_table(plan.staging_table_id, retry=budget.retry, timeout=budget.request_timeout)
    clean_types = {f.name: f.field_type for f in clean.schema}
    return sorted(f.name for f in staging.schema
                  if f.field_type in _AVRO_LOGICAL_TYPES and clean_types.get(f.name) in ("INTEGER", "INT64"))


def raw_table_expiry(spec: ImportSpec, *, now: datetime) -> datetime | None:
    """When BigQuery deletes a raw table written at ``now`` (``raw_table_expiration_days`` later), or None.

    The spec refuses a value that could expire the only copy of loaded rows (see
    :meth:`ImportSpec._check_raw_table_expiration`); each load of the interval moves the expiry on.
    """
    if spec.raw_table_expiration_days is None:
        return None
    return now + timedelta(days=spec.raw_table_expiration_days)


def _expire_later(client: bigquery.Client, table_id: str, *, budget: RetryBudget) -> None:
    """Give a staging table its expiry (also when a load job created it), so a killed worker never leaves it forever."""
    table = client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
    table.expires = datetime.now(UTC) + STAGING_EXPIRY
    client.update_table(table, ["expires"], retry=budget.retry, timeout=budget.request_timeout)
