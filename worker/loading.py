"""Loading: BigQuery load jobs read the interval's ``gs://`` URIs directly into its raw table.

File data never passes through the worker. Each batch of up to 10,000 URIs is one
load job into a staging table private to this worker attempt (concurrent attempts
never share one); a copy job (atomic) then replaces the raw table — or appends to it
when objects are added to a sealed interval — and the staging table is dropped.
Staging tables carry a one-day expiry from their first load, so a killed worker
never leaves one behind for good. The copy job's id is deterministic per load, so a
retried or concurrent worker reuses a copy that already ran instead of writing twice.

What each format adds to a load job is its profile's (:mod:`worker.core.formats`); the datasets are
:mod:`worker.bigquery_datasets`', the raw tables' helpers :mod:`worker.raw_tables`'.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.bigquery_jobs import find_succeeded, run_or_reattach
from worker.bigquery_queries import count_rows
from worker.checkpoints import checkpoint
from worker.core.errors import WorkerError, explain_bigquery_error
from worker.core.formats import AVRO_LOGICAL_TYPES, SourceFormat
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, OnBadFile
from worker.planning import IntervalLoadPlan, unloadable_reason
from worker.raw_tables import raw_copy_config, raw_table_expiry, table_exists
from worker.results import LoadOutcome
from worker.table_expiry import settle

#: How long a staging table outlives a worker that could not drop it (a killed worker, an outage).
STAGING_EXPIRY = timedelta(days=1)


def staging_table(spec: ImportSpec, plan: IntervalLoadPlan, *, now: datetime) -> bigquery.Table:
    """The attempt's private staging table, with an expiry so a killed worker never leaves it behind."""
    table = bigquery.Table(plan.staging_table_id,
                           schema=[bigquery.SchemaField(f.name, f.type, mode=f.mode) for f in spec.schema or ()])
    table.expires = now + STAGING_EXPIRY
    table.labels = {"gcs_import_staging": "true"}
    return table


def load_job_config(spec: ImportSpec, *, first_batch: bool, avro_logical: bool | None = None) -> bigquery.LoadJobConfig:
    """The load settings the spec asks for: format, dispositions, schema (or autodetect where the format's profile
    says so), bad records, the load options, and what the format's profile fills in (CSV header rows and delimiter,
    Parquet list inference, Avro logical types; :mod:`worker.core.formats`). ``avro_logical`` overrides
    :func:`worker.core.formats.avro_logical_types` for an Avro load."""
    profile = spec.format.profile
    config = bigquery.LoadJobConfig(
        source_format=spec.format.value,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE if first_batch else bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        max_bad_records=spec.max_bad_records,
        labels={"gcs_import_asset": spec.name.lower()[:63]},
    )
    if spec.schema is not None:
        config.schema = [bigquery.SchemaField(f.name, f.type, mode=f.mode) for f in spec.schema]
    elif profile.autodetect:
        config.autodetect = True
    profile.fill(config, spec, avro_logical)
    spec.load_options.apply(config)
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
    ``on_job_done(job_id, reattached)`` is called after each load job (and for a reused copy);
    ``before_copy(skipped)`` just before the raw table can change (the ledger records the intent).

    Raises:
        WorkerError: a load or copy job failed (the message names the interval, the table,
            BigQuery's reasons, usually with the offending ``gs://`` file, and the fix), the interval
            holds objects no URI can name (without ``on_bad_file: skip``), or every file was skipped.
    """
    load = _IntervalLoad(client=client, spec=spec, plan=plan, budget=budget, on_job_done=on_job_done)
    try:
        return load.run(before_copy=before_copy)
    except gexc.GoogleAPIError as exc:
        explained = explain_bigquery_error(exc, table=plan.staging_table_id, action="loading")
        raise type(explained)(  # keeps ServiceUnreachable, which stops the run
            f"Loading interval {plan.suffix} of {spec.name!r} ({len(plan.objects)} files, first "
            f"gs://{spec.bucket_name}/{plan.objects[0].name}) into {plan.raw_table_id} failed while {load.step}: "
            f"{explained.args[0]} Nothing was published and no GCS object was deleted; {_advice(exc)}"
        ) from exc


@dataclass
class _IntervalLoad:
    """One attempt at loading one interval: the jobs it ran, the files it skipped, what it must warn about,
    and the step it is at (a failure's message names it)."""

    client: bigquery.Client
    spec: ImportSpec
    plan: IntervalLoadPlan
    budget: RetryBudget
    on_job_done: Callable[[str, bool], None] | None
    step: str = "looking up earlier jobs of this load"
    job_ids: list[str] = field(default_factory=list)
    reattached: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: A load job has written the staging table (the next batch appends).
    wrote_first: bool = False

    def run(self, *, before_copy: Callable[[tuple[str, ...]], None] | None) -> LoadOutcome:
        """Reuse a finished copy, or load every batch, then record the intent and copy into the raw table."""
        spec, plan = self.spec, self.plan
        finished_copy = _find_finished_copy(self.client, spec, plan, budget=self.budget)
        if finished_copy is not None:
            # A retry of a load that already reached the raw table: nothing to run again.
            if self.on_job_done:
                self.on_job_done(finished_copy.job_id, True)
            return _outcome(self.client, spec, plan, job_ids=(finished_copy.job_id,), reattached=1, budget=self.budget,
                            copied_from=copy_source(finished_copy))
        self._refuse_or_skip_unloadable()
        self.skipped = list(plan.unloadable)
        self._run_batches()
        self.step = "comparing Avro column types with the clean table"
        kept_raw = _clean_columns_holding_raw_avro(self.client, spec, plan, budget=self.budget) if self.wrote_first else []
        if kept_raw:
            self._reload_with_raw_avro(kept_raw)
        if not self.wrote_first:
            raise WorkerError(
                f"Every file of interval {plan.suffix} of {spec.name!r} is unreadable by BigQuery ({len(self.skipped)} "
                f"skipped, e.g. {', '.join(f'gs://{spec.bucket_name}/{n}' for n in self.skipped[:3])}): nothing was "
                "loaded or published and no GCS object was deleted; fix the files (or rename the ones named with '*' "
                "or '//') and re-run."
            )
        if before_copy:
            self.step = "recording the pending load"
            before_copy(tuple(self.skipped))  # the intent, durable before the raw table can change (see worker.ledger)
        return self._copy_into_raw()

    def _refuse_or_skip_unloadable(self) -> None:
        """Objects no URI can name are never sent (BigQuery would read other objects): fail, or skip them like
        unreadable files (``on_bad_file: skip``) with a warning naming them."""
        spec, plan = self.spec, self.plan
        if not plan.unloadable:
            return
        named = "; ".join(f"gs://{spec.bucket_name}/{n}: {unloadable_reason(n)}" for n in plan.unloadable[:5])
        more = f" and {len(plan.unloadable) - 5} more" if len(plan.unloadable) > 5 else ""
        if spec.on_bad_file is not OnBadFile.skip:
            raise WorkerError(
                f"Interval {plan.suffix} of {spec.name!r} has {len(plan.unloadable)} object(s) no BigQuery load job "
                f"can read by name ({named}{more}): nothing was loaded or published and no GCS object was deleted; "
                "rename them without '*' and '//' (e.g. gcloud storage mv), or set on_bad_file: skip to load the "
                "interval without them.")
        self.warnings.append(f"not loaded, kept in GCS and never deleted: {named}{more}; rename them without '*' "
                             "and '//' to load them.")

    def _run_batches(self, avro_logical: bool | None = None, variant: str = "") -> None:
        """Create the staging table (with an explicit schema) and run one load job per batch into it."""
        client, spec, plan, budget = self.client, self.spec, self.plan, self.budget
        self.step = "creating the staging table"
        if spec.schema:
            # exists_ok: the table is private to this attempt (its token in the name), so one that exists is this
            # attempt's own: a tables.insert retried after its answer was lost (409 Already Exists), or an earlier
            # round's; the first load job truncates it
            client.create_table(staging_table(spec, plan, now=datetime.now(UTC)), exists_ok=True, retry=budget.retry,
                                timeout=budget.request_timeout)
        for index, uris in enumerate(plan.batches):
            self.step = f"loading batch {index + 1} of {len(plan.batches)}"
            job, again = _load_batch(client, spec, plan, index=index, uris=uris, truncate=not self.wrote_first,
                                     skipped=self.skipped, budget=budget, avro_logical=avro_logical, variant=variant)
            if job is None:
                continue  # every file of the batch was skipped
            if not self.wrote_first:
                _expire_later(client, plan.staging_table_id, budget=budget)
                self.wrote_first = True
            self.job_ids.append(job.job_id)
            self.reattached += again
            checkpoint("load.batch_loaded")
            if self.on_job_done:
                self.on_job_done(job.job_id, again)

    def _reload_with_raw_avro(self, kept_raw: list[str]) -> None:
        """An earlier release loaded these columns as INTEGER: loading them as TIMESTAMP/DATE now would be a
        column type change the clean table refuses. Load the interval again with the raw types."""
        self.client.delete_table(self.plan.staging_table_id, not_found_ok=True, retry=self.budget.retry,
                                 timeout=self.budget.request_timeout)
        self.job_ids.clear()
        self.skipped[:], self.wrote_first = list(self.plan.unloadable), False
        self._run_batches(avro_logical=False, variant="_avroraw")
        self.warnings.append(
            f"{self.spec.clean_table_id} holds Avro logical-typed column(s) {', '.join(kept_raw)} as INTEGER (loaded "
            "without useAvroLogicalTypes by an earlier release), so this interval was loaded with the raw Avro types "
            "too. To keep them and skip this check, set load_options.use_avro_logical_types: false; to migrate, "
            "convert those clean-table columns (e.g. TIMESTAMP_MICROS(col), DATE_FROM_UNIX_DATE(col)) and set "
            "load_options.use_avro_logical_types: true (open intervals then reload).")

    def _copy_into_raw(self) -> LoadOutcome:
        """Copy the staging table into the raw table (or reattach to that copy), drop it, read the raw table back."""
        client, spec, plan, budget = self.client, self.spec, self.plan, self.budget
        retry, timeout = budget.retry, budget.request_timeout
        self.step = "giving the staging table the raw table's clustering"
        _match_raw_clustering(client, plan, budget=budget)
        self.step = "copying the staging table into the raw table"
        copy_config = raw_copy_config(spec, append=plan.append, now=datetime.now(UTC))

        def start_copy(job_id: str) -> bigquery.CopyJob:
            return client.copy_table(plan.staging_table_id, plan.raw_table_id, job_id=job_id, location=spec.location,
                                     job_config=copy_config, retry=retry, timeout=timeout)

        copy_job, _ = run_or_reattach(client, plan.copy_job_base(spec=spec), start_copy, budget=budget)
        self.job_ids.append(copy_job.job_id)
        checkpoint("load.copied")
        self.step = "dropping the staging table"
        client.delete_table(plan.staging_table_id, not_found_ok=True, retry=retry, timeout=timeout)
        self.step = "reading back the raw table's expiry and counting its rows"
        return _outcome(client, spec, plan, job_ids=tuple(self.job_ids), reattached=self.reattached, budget=budget,
                        copied_from=copy_source(copy_job), skipped=tuple(self.skipped), warnings=tuple(self.warnings))


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


def _outcome(client: bigquery.Client, spec: ImportSpec, plan: IntervalLoadPlan, *, job_ids: tuple[str, ...],
             reattached: int, budget: RetryBudget, copied_from: str | None, skipped: tuple[str, ...] = (),
             warnings: tuple[str, ...] = ()) -> LoadOutcome:
    """Read the raw table back: its expiry brought to the spec's decision (a copy that created it gave it the
    dataset's default, which a copy cannot remove; :func:`worker.raw_tables.raw_copy_config`), its row count and schema."""
    table = client.get_table(plan.raw_table_id, retry=budget.retry, timeout=budget.request_timeout)
    settle(client, table, expires=raw_table_expiry(spec, now=datetime.now(UTC)), budget=budget)
    rows = count_rows(client, plan.raw_table_id, budget=budget)
    return LoadOutcome(rows=rows, job_ids=job_ids, reattached=reattached, schema=tuple(table.schema),
                       copied_from=copied_from, skipped=skipped, warnings=warnings)


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
                  if f.field_type in AVRO_LOGICAL_TYPES and clean_types.get(f.name) in ("INTEGER", "INT64"))


def _expire_later(client: bigquery.Client, table_id: str, *, budget: RetryBudget) -> None:
    """Give a staging table its expiry (also when a load job created it), so a killed worker never leaves it forever.

    One ``tables.patch`` of ``expirationTime`` alone, without reading the table first: the staging table is this
    attempt's own (nothing else changes it), so there is no ETag to guard and nothing else to keep."""
    table = bigquery.Table(table_id)
    table.expires = datetime.now(UTC) + STAGING_EXPIRY
    client.update_table(table, ["expires"], retry=budget.retry, timeout=budget.request_timeout)
