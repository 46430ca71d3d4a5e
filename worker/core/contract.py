"""The Pipes contract between the orchestrator and the worker: extras keys, check names, metadata keys.

Both sides import these names, so a rename cannot break one side silently.
"""

from __future__ import annotations

import enum

# -- Pipes extras the orchestrator sends ------------------------------------
#: The import spec, as :meth:`worker.core.spec.ImportSpec.to_dict`.
EXTRA_SPEC = "spec"
#: What to do: one of :class:`Action`.
EXTRA_ACTION = "action"
#: Optional explicit window ``[start, end)`` as ISO strings; without it the worker
#: uses the Pipes context's partition time window.
EXTRA_WINDOW_START = "window_start"
EXTRA_WINDOW_END = "window_end"
#: Retention only: report what would be deleted, delete nothing.
EXTRA_DRY_RUN = "dry_run"
#: Optional ISO timestamp that retention counts ``retention_days`` back from (default: now).
EXTRA_AS_OF = "as_of"
#: Optional: seconds the worker keeps retrying an unreachable GCS or BigQuery endpoint.
EXTRA_RETRY_DEADLINE = "retry_deadline_seconds"
#: Optional bool (default false): load intervals the completeness gate (``complete_when``) finds incomplete
#: instead of reporting them :attr:`IntervalStatus.INCOMPLETE` (the asset's op config ``load_incomplete``,
#: the worker's ``--load-incomplete``).
EXTRA_LOAD_INCOMPLETE = "load_incomplete"


#: Worker error classes that mean "try the step again later" (see :class:`worker.core.errors.TransientError`).
#: Read by the launcher only when a worker sent no :data:`REPORT_FAILURE` (an image older than the code
#: location): the compatibility path, kept for one release.
TRANSIENT_ERRORS = ("TransientError", "ServiceUnreachable")

# -- The worker's failure report (a Pipes custom message, sent just before the ``closed`` message) --
#: Key of the custom message ``{REPORT_FAILURE: {FAILURE_TRANSIENT: bool, FAILURE_ERROR: str, FAILURE_MESSAGE: str}}``
#: the worker reports when it fails under Pipes; the launcher retries the step when ``FAILURE_TRANSIENT`` is true.
REPORT_FAILURE = "gcs_import/worker_failure"
#: Whether a later run of the same step is expected to get past the failure (a :class:`worker.core.errors.TransientError`).
FAILURE_TRANSIENT = "transient"
#: The error's class name (e.g. ``ServiceUnreachable``).
FAILURE_ERROR = "error"
#: The error's message (the one line the step failure shows).
FAILURE_MESSAGE = "message"


class Action(enum.Enum):
    IMPORT = "import"
    RETENTION = "retention"


# -- What happened to each requested interval (the ``status`` of META_PARTITIONS entries) --
class IntervalStatus(enum.StrEnum):
    """What happened to one requested interval in a run."""

    #: Loaded (or reloaded from its complete listing) by this run.
    LOADED = "loaded"
    #: Sealed interval: objects the ledger did not know were loaded in addition by this run.
    ADDED = "added"
    #: The same object generations as recorded, loaded with the same settings: skipped.
    UNCHANGED = "unchanged"
    #: Loaded before and nothing to load now (retention deleted its files, or they are gone):
    #: its recorded rows are in BigQuery and count as loaded.
    RETAINED = "retained"
    #: Never loaded and no files.
    NO_FILES = "no_files"
    #: The completeness gate (``complete_when``) found it incomplete: not loaded (the error says why, in one
    #: line); it fails the run like FAILED, never as transient, unless the run says ``load_incomplete``.
    INCOMPLETE = "incomplete"
    FAILED = "failed"


#: Statuses whose rows are in BigQuery after the run.
PRESENT = (IntervalStatus.LOADED, IntervalStatus.ADDED, IntervalStatus.UNCHANGED, IntervalStatus.RETAINED)


# -- Asset checks the worker reports ----------------------------------------
#: ERROR, blocking: every requested interval with files loaded at least one row.
CHECK_ROWS_LOADED = "rows_loaded"
#: WARN: no object matched the pattern with a timestamp that failed to parse.
CHECK_NO_UNPARSEABLE_FILES = "no_unparseable_files"
#: WARN: each loaded interval has the same columns as the interval loaded before it.
CHECK_SCHEMA_UNCHANGED = "schema_unchanged"
#: WARN: no file was skipped as unreadable (``on_bad_file: skip``).
CHECK_NO_SKIPPED_FILES = "no_skipped_files"
ALL_CHECKS = (CHECK_ROWS_LOADED, CHECK_NO_UNPARSEABLE_FILES, CHECK_SCHEMA_UNCHANGED, CHECK_NO_SKIPPED_FILES)

# -- Materialization metadata keys (stable, so the UI can plot them) -----------
META_ROW_COUNT = "dagster/row_count"
META_TABLE_NAME = "dagster/table_name"
#: The clean table's columns after the run (a TableSchema).
META_COLUMN_SCHEMA = "dagster/column_schema"
#: One partition's own rows (set per partition by the orchestrator from :data:`META_PARTITIONS`).
META_PARTITION_ROW_COUNT = "dagster/partition_row_count"
#: The source prefix, ``gs://bucket/path_base/``.
META_URI = "dagster/uri"
#: Per requested interval (keyed by its ISO start): rows, files, bytes, status, raw_table, jobs. The
#: orchestrator attaches each interval's figures to its own partition's materialization and drops this
#: key, because a Pipes materialization carries no partition key.
META_PARTITIONS = "gcs_import/partitions"
#: The window's loaded rows (``dagster/row_count`` is the clean table's size).
META_ROWS_IN_WINDOW = "rows_in_window"
META_INTERVALS_LOADED = "intervals_loaded"
META_INTERVALS_SKIPPED = "intervals_skipped"
META_INTERVALS_EMPTY = "intervals_without_files"
#: Intervals loaded earlier whose files retention deleted (their recorded rows count as loaded).
META_INTERVALS_RETAINED = "intervals_retained"
META_FILES_MATCHED = "files_matched"
META_FILES_LOADED = "files_loaded"
META_FILES_IGNORED = "files_ignored"
META_FILES_UNPARSEABLE = "files_unparseable"
META_UNPARSEABLE_NAMES = "unparseable_names"
#: gs:// URIs of the files a load skipped as unreadable (``on_bad_file: skip``).
META_FILES_SKIPPED = "files_skipped"
META_BYTES_LOADED = "bytes_loaded"
META_JOB_IDS = "job_ids"
META_RAW_TABLES = "raw_tables"
META_CLEAN_TABLE_URL = "clean_table_url"
META_PER_INTERVAL = "per_interval"
META_SECONDS_PREFIX = "seconds_"  # seconds_list, seconds_load, seconds_publish, seconds_retention
META_OBJECTS_DELETED = "objects_deleted"
META_BYTES_FREED = "bytes_freed"  # null when unknown (the bucket's soft delete/versioning unread)
META_BYTES_DELETED = "bytes_deleted"
META_BYTES_FREED_NOTE = "bytes_freed_note"
META_DRY_RUN = "dry_run"
#: ``retention_action: archive``: objects (and their bytes) whose verified archive copy was recorded by this run.
META_OBJECTS_ARCHIVED = "objects_archived"
META_BYTES_ARCHIVED = "bytes_archived"
#: ``retention_action: archive``: one line per original kept because its archive copy differs.
META_ARCHIVE_UNTRUSTED = "archive_copies_untrusted"
#: Per partition (in :data:`META_PARTITIONS` and on the partition's materialization): seconds from the newest
#: loaded object's GCS ``updated`` time to the end of the publish that made its rows queryable in the clean
#: table. Only for intervals the run loaded and published (absent otherwise).
META_ARRIVAL_TO_QUERYABLE = "arrival_to_queryable_seconds"
