"""The import specification: one declaration of a periodic GCS file drop and its BigQuery tables.

This module is the single home of the spec. The orchestrator builds it (its
``IntervalGCSAsset`` is this class plus Dagster-only fields), validates it when
definitions load, and sends it to the worker as JSON in the Pipes extras; the
worker rebuilds it with :meth:`ImportSpec.from_dict`, which runs the same checks.

Every identifier that reaches SQL (datasets, tables, columns) is checked here
against a conservative pattern and is also backtick-quoted where it is used;
values travel as query parameters, never inside SQL text.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.core.completeness import TIMESTAMP_GROUP, CompleteWhen
from worker.core.formats import SourceFormat
from worker.core.intervals import Interval, parse_iso
from worker.core.load_options import LoadOptions
from worker.core.notifications import parse_subscription_path
from worker.core.retention_action import ArchiveTarget, RetentionAction

__all__ = [
    "DEFAULT_START_DATE",
    "TIMESTAMP_GROUP",
    "ImportSpec",
    "Interval",
    "RetentionAction",
    "SchemaFieldSpec",
    "SourceFormat",
    "SourceMode",
    "SpecError",
]

#: First partition when a spec names no ``start_date`` (documented in the README).
DEFAULT_START_DATE = "2024-01-01"

#: Longest retention accepted: beyond it the cutoff date cannot be computed (and nobody means it).
MAX_RETENTION_DAYS = 36_500
#: The most intervals one run imports side by side (``max_concurrent_intervals``): each is a thread with its
#: own BigQuery jobs in flight; more would mostly queue behind BigQuery's per-project job and DML limits.
MAX_CONCURRENT_INTERVALS = 16


class SpecError(ValueError):
    """A spec field is invalid. The message names the spec, the field and the fix.

    ``field`` is the top-level field at fault (``"schema"`` for ``schema[0].name``, ``"load_options"``
    for ``load_options.quote``), ``None`` when the error is about the spec as a whole; the YAML
    component finds the field's line with it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SourceMode(enum.Enum):
    """How loaded intervals reach the clean table."""

    #: The clean table is the snapshot of the newest loaded interval.
    Overwrite = "Overwrite"
    #: The clean table holds every interval, tagged by the interval column.
    Incremental = "Incremental"


class SchemaEvolution(enum.Enum):
    """What an Incremental import does when an interval's columns differ from the clean table's.

    A column whose type changed always fails the interval, whatever the mode.
    """

    #: The interval is not published; the message names the new columns and the fix.
    fail = "fail"
    #: New columns are added to the clean table as NULLABLE (earlier intervals read NULL).
    add_columns = "add_columns"
    #: Also: a REQUIRED clean column that an interval leaves out becomes NULLABLE.
    add_and_relax = "add_and_relax"


class OnBadFile(enum.Enum):
    """What a load does with a file BigQuery cannot read."""

    #: The interval fails, naming the file; nothing of it is published.
    fail = "fail"
    #: The interval is loaded without the files BigQuery's load error names (a bounded number of load
    #: retries); they are listed, fail the WARN check ``no_skipped_files``, and are never deleted.
    skip = "skip"


_FIELD_TYPES = frozenset(
    {
        "STRING", "BYTES", "INTEGER", "INT64", "FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC",
        "BOOLEAN", "BOOL", "TIMESTAMP", "DATE", "TIME", "DATETIME", "GEOGRAPHY", "JSON",
    }
)
_FIELD_MODES = frozenset({"NULLABLE", "REQUIRED", "REPEATED"})
#: The formats BigQuery applies ``maxBadRecords`` to (their profiles say; it ignores the value for the others).
_BAD_RECORDS_FORMATS = frozenset(f.value for f in SourceFormat if f.profile.max_bad_records)

_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,200}$")
# Datasets and tables: BigQuery allows more (tables may hold dashes and Unicode),
# but this subset never needs escaping beyond backticks.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1000}$")
_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9.\-]*[a-z0-9]:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]$")
_LOCATION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-]{1,40}$")
#: A '.' not preceded by a backslash, followed by a file extension at the end of the pattern.
_UNESCAPED_EXTENSION_DOT = re.compile(r"(?<!\\)(\.)(?=(?:[A-Za-z0-9]{1,8})(?:\.(?:gz|bz2|zst))?\)?$)")


@dataclass(frozen=True, kw_only=True)
class SchemaFieldSpec:
    """One column of an explicit load schema."""

    name: str
    type: str
    mode: str = "NULLABLE"
    #: The column's description in the raw and clean tables (not part of the load digest).
    description: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True, kw_only=True)
class ImportSpec:
    """A periodic file drop in GCS and where its intervals land in BigQuery.

    Files are the objects ``gs://{bucket_name}/{path_base}/...`` whose name after
    ``path_base/`` fully matches ``file_match``; its named group
    ``interval_timestamp`` (parsed with ``timestamp_format``) says which interval
    a file belongs to. Each interval is loaded into the raw table
    ``{raw_dataset_name}.{destination_table}__{YYYYMMDD[HH]}`` and published to
    ``{clean_dataset_name}.{destination_table}`` according to ``mode``. Objects
    of intervals older than ``retention_days`` are deleted once loaded.

    Raises:
        SpecError: on construction, for any invalid field, naming it.
    """

    name: str
    key_prefix: str | Sequence[str] | None = None
    project_id: str
    bucket_name: str
    path_base: str
    file_match: str
    destination_table: str
    raw_dataset_name: str
    clean_dataset_name: str
    interval: Interval
    mode: SourceMode
    retention_days: int
    format: SourceFormat | str = SourceFormat.CSV
    location: str = "US"
    #: Explicit columns; ``None`` means BigQuery detects the schema.
    schema: Sequence[SchemaFieldSpec | Mapping[str, str]] | None = None
    csv_header_rows: int = 1
    csv_delimiter: str = ","
    max_bad_records: int = 0
    #: ``strptime`` format of ``interval_timestamp``; ``None`` means the interval's default.
    timestamp_format: str | None = None
    #: First interval (ISO date); ``None`` means :data:`DEFAULT_START_DATE`.
    start_date: str | None = None
    #: Column that tags each row of an Incremental clean table with its interval start.
    interval_column: str = "_interval_start"
    #: Overwrite only: let an interval without rows replace the snapshot (off: a header-only or
    #: empty drop never replaces a good snapshot; the blocking ``rows_loaded`` check fails instead).
    allow_empty_snapshot: bool = False
    #: Project billed for GCS requests on a Requester Pays bucket (sent as ``userProject`` on every
    #: listing and delete); ``None``: the bucket's own project pays. BigQuery load jobs are billed
    #: to ``project_id`` (the job's project) either way.
    billing_project: str | None = None
    #: Incremental: how a new column (or a REQUIRED column an interval leaves out) reaches the clean
    #: table; see :class:`SchemaEvolution`. Overwrite snapshots always take the newest interval's columns.
    schema_evolution: SchemaEvolution | str = SchemaEvolution.add_columns
    #: More load job options (quote, encoding, null_marker, time_zone, ...): :class:`worker.core.load_options.LoadOptions`.
    load_options: LoadOptions | Mapping[str, Any] | None = None
    #: The clean table's clustering columns (at most 4, in order); updated on an existing table.
    clustering_fields: Sequence[str] | None = None
    #: Incremental: queries of the clean table must filter on ``interval_column`` (cost control).
    require_partition_filter: bool = False
    #: The clean table's description (the orchestrator passes the asset's description).
    table_description: str | None = None
    #: Days after a raw table's last load that BigQuery deletes it; ``None``: kept forever. Only for
    #: Incremental, and longer than ``retention_days`` (see :meth:`_check_raw_table_expiration`).
    raw_table_expiration_days: int | None = None
    #: A file BigQuery cannot read: fail the interval (default) or load the interval without it.
    on_bad_file: OnBadFile | str = OnBadFile.fail
    #: How many intervals of one run are imported side by side (1 to :data:`MAX_CONCURRENT_INTERVALS`; 1: one
    #: after another). Only the run's speed: left out of :meth:`fingerprint`, so job ids and digests ignore it.
    max_concurrent_intervals: int = 8
    #: The Pub/Sub subscription (``projects/{project}/subscriptions/{name}``) that receives the bucket's Cloud
    #: Storage notifications; set, the factory adds the sensor ``{name}_gcs_notifications_sensor``.
    notifications_subscription: str | None = None
    #: When an interval's drop is complete enough to load (:class:`worker.core.completeness.CompleteWhen`:
    #: ``marker_match``, ``quiet_for``, ``min_files``; all given must hold); ``None``: as soon as it has a file.
    complete_when: CompleteWhen | Mapping[str, Any] | None = None
    #: What retention does with a loaded object past ``retention_days``: delete it, or archive it first.
    retention_action: RetentionAction | str = RetentionAction.delete
    #: ``archive`` only: the bucket that receives ``{archive_prefix}{name}`` copies.
    archive_bucket: str | None = None
    #: ``archive`` only: prepended to each object's name in ``archive_bucket`` (e.g. ``"drops/"``).
    archive_prefix: str = ""

    #: How error messages name the spec: the worker knows an "import spec"; the orchestrator's
    #: :class:`IntervalGCSAsset` overrides it with its own class name. (A class attribute, not a field.)
    spec_label = "import spec"

    # -- field checks, run by __post_init__ in declaration order ---------------------------

    def _check_name(self) -> None:
        """``name``: 1-200 letters, digits or underscores (an asset name and part of job ids)."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise SpecError(
                f"{self.spec_label} field 'name' is {self.name!r}: use 1-200 letters, digits or underscores "
                "(it becomes a Dagster asset name and part of BigQuery job ids).",
                field="name",
            )

    def _coerce_enums(self) -> None:
        """The enum fields as members (a member's name or value is accepted, in any case)."""
        for field_name, enum_cls in _ENUM_FIELDS.items():
            object.__setattr__(self, field_name, _coerce_enum(self, field_name, enum_cls))

    def _check_load_options(self) -> None:
        """``load_options`` as :class:`LoadOptions`, each option checked against ``format``."""
        options, problem = LoadOptions.parse(self.load_options, source_format=self.format.value)
        if problem:
            raise SpecError(f"{self.spec_label} {self.name!r}: field {problem}.", field="load_options")
        object.__setattr__(self, "load_options", options)

    def _check_key_prefix(self) -> None:
        """``key_prefix`` as a tuple of names (a string is one part)."""
        if isinstance(self.key_prefix, str):
            object.__setattr__(self, "key_prefix", (self.key_prefix,))
        elif isinstance(self.key_prefix, list | tuple):
            object.__setattr__(self, "key_prefix", tuple(self.key_prefix))
        elif self.key_prefix is not None:
            self._fail("key_prefix", f"is {self.key_prefix!r}", "give a string or a list of strings, e.g. 'gitcoin'")
        for part in self.key_prefix or ():
            if not isinstance(part, str) or not _NAME_RE.match(part):
                self._fail("key_prefix", f"has {part!r}", "use letters, digits or underscores in each part")

    def _check_storage(self) -> None:
        """``project_id``, ``bucket_name`` and ``path_base`` (stripped of slashes)."""
        if not isinstance(self.project_id, str) or not _PROJECT_RE.match(self.project_id):
            self._fail("project_id", f"is {self.project_id!r}", "use a Google Cloud project id (6-30 lowercase letters, digits, dashes)")
        if (
            not isinstance(self.bucket_name, str)
            or not _BUCKET_RE.match(self.bucket_name)
            or ".." in self.bucket_name
            or self.bucket_name.startswith("goog")
        ):
            self._fail(
                "bucket_name", f"is {self.bucket_name!r}",
                "use a GCS bucket name: 3-63 lowercase letters, digits, dashes, underscores or dots, "
                "starting and ending with a letter or digit",
            )
        if not isinstance(self.path_base, str):
            self._fail("path_base", f"is {self.path_base!r}", "give the folder under the bucket as a string, e.g. 'passport'")
        object.__setattr__(self, "path_base", self.path_base.strip("/"))

    def _check_tables(self) -> None:
        """The BigQuery identifiers, ``retention_days`` and ``location``."""
        for field_name in ("destination_table", "raw_dataset_name", "clean_dataset_name", "interval_column"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not _IDENTIFIER_RE.match(value):
                self._fail(field_name, f"is {value!r}",
                           "use a BigQuery identifier: a letter or underscore, then letters, digits or underscores")
        if (not isinstance(self.retention_days, int) or isinstance(self.retention_days, bool)
                or not 0 <= self.retention_days <= MAX_RETENTION_DAYS):
            self._fail("retention_days", f"is {self.retention_days!r}",
                       f"use a whole number of days from 0 to {MAX_RETENTION_DAYS} (100 years)")
        if not isinstance(self.location, str) or not _LOCATION_RE.match(self.location):
            self._fail("location", f"is {self.location!r}", "use a BigQuery location such as 'US', 'EU' or 'europe-west1'")

    def _check_schema(self) -> None:
        """``schema`` as a non-empty tuple of :class:`SchemaFieldSpec` (or ``None``: autodetect)."""
        if self.schema is None:
            return
        if not isinstance(self.schema, list | tuple):
            self._fail("schema", f"is {self.schema!r}", "give a list of columns, e.g. [{'name': 'a', 'type': 'STRING'}]")
        object.__setattr__(self, "schema", tuple(self._schema_field(i, item) for i, item in enumerate(self.schema)))
        if not self.schema:
            self._fail("schema", "is empty", "list at least one column, or leave it unset for autodetect")

    def __post_init__(self) -> None:
        """Check every field in declaration order and normalise in place (enums, tuples, stripped text).

        Raises:
            SpecError: the first invalid field, naming it (``SpecError.field``) and the fix.
        """
        self._check_name()
        self._coerce_enums()
        self._check_load_options()
        self._check_key_prefix()
        self._check_storage()
        self._check_file_match()
        self._check_tables()
        self._check_schema()
        for field_name in ("csv_header_rows", "max_bad_records"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self._fail(field_name, f"is {value!r}", "use a whole number, 0 or more")
        if self.max_bad_records and self.format.value not in _BAD_RECORDS_FORMATS:
            # "This is only supported for CSV and NEWLINE_DELIMITED_JSON file formats": BigQuery ignores it for
            # the others, so a bad file fails the load whatever the value (https://cloud.google.com/bigquery/docs/
            # reference/rest/v2/Job#JobConfigurationLoad.FIELDS.max_bad_records).
            self._fail("max_bad_records", f"is {self.max_bad_records} for {self.format.value} files",
                       "BigQuery ignores it except for CSV and NEWLINE_DELIMITED_JSON: remove it (or set 0); to load "
                       "an interval without the files BigQuery cannot read, set on_bad_file: skip")
        if not isinstance(self.csv_delimiter, str) or len(self.csv_delimiter) != 1:
            self._fail("csv_delimiter", f"is {self.csv_delimiter!r}", "use a single character such as ',' or '\\t'")
        self._check_reading()
        self._check_concurrency()
        self._check_layout()
        self._check_start_date()
        self._check_arrivals()
        self._check_retention_action()

    def _check_reading(self) -> None:
        """``timestamp_format``, ``billing_project`` and ``allow_empty_snapshot``."""
        if self.timestamp_format is not None and (
            not isinstance(self.timestamp_format, str) or "%" not in self.timestamp_format
        ):
            self._fail("timestamp_format", f"is {self.timestamp_format!r}", "use a strptime format such as '%Y-%m-%d'")
        if self.billing_project is not None and (
            not isinstance(self.billing_project, str) or not _PROJECT_RE.match(self.billing_project)
        ):
            self._fail("billing_project", f"is {self.billing_project!r}",
                       "use the id of the Google Cloud project that pays for Requester Pays requests")
        if not isinstance(self.allow_empty_snapshot, bool):
            self._fail("allow_empty_snapshot", f"is {self.allow_empty_snapshot!r}", "use true or false")

    def _check_concurrency(self) -> None:
        """``max_concurrent_intervals``: a whole number from 1 to :data:`MAX_CONCURRENT_INTERVALS`."""
        value = self.max_concurrent_intervals
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CONCURRENT_INTERVALS:
            self._fail("max_concurrent_intervals", f"is {value!r}",
                       f"use a whole number from 1 (one interval after another) to {MAX_CONCURRENT_INTERVALS}")

    def _check_arrivals(self) -> None:
        """``notifications_subscription`` (a full subscription path) and ``complete_when`` (as :class:`CompleteWhen`)."""
        if self.notifications_subscription is not None:
            try:
                parse_subscription_path(self.notifications_subscription)
            except ValueError:
                self._fail("notifications_subscription", f"is {self.notifications_subscription!r}",
                           "use the subscription's full path, projects/PROJECT_ID/subscriptions/SUBSCRIPTION_ID")
        gate, problem = CompleteWhen.parse(self.complete_when)
        if problem:
            raise SpecError(f"{self.spec_label} {self.name!r}: field 'complete_when' {problem}.", field="complete_when")
        object.__setattr__(self, "complete_when", gate)

    def _check_retention_action(self) -> None:
        """``archive_bucket``/``archive_prefix``: required with ``archive``, refused with ``delete``; an archive copy
        must not land where this import would list it again."""
        if self.retention_action is RetentionAction.delete:
            if self.archive_bucket is not None or self.archive_prefix:
                self._fail("archive_bucket" if self.archive_bucket is not None else "archive_prefix",
                           "is set but retention_action is 'delete'", "set retention_action: archive, or remove it")
            return
        if self.archive_bucket is None:
            self._fail("archive_bucket", "is missing for retention_action 'archive'",
                       "name the bucket that receives the archived objects")
        if not isinstance(self.archive_bucket, str) or not _BUCKET_RE.match(self.archive_bucket) or ".." in self.archive_bucket:
            self._fail("archive_bucket", f"is {self.archive_bucket!r}", "use a GCS bucket name")
        if not isinstance(self.archive_prefix, str) or len(self.archive_prefix) > 512 or "\n" in self.archive_prefix:
            self._fail("archive_prefix", f"is {self.archive_prefix!r}", "give a name prefix such as 'archive/'")
        if self.archive_bucket == self.bucket_name and (
                not self.archive_prefix or self.archive_prefix.startswith(self.object_prefix)
                or self.object_prefix.startswith(self.archive_prefix)):
            self._fail("archive_prefix", f"is {self.archive_prefix!r} in the drop bucket itself",
                       f"use another archive_bucket, or a prefix outside {self.object_prefix or 'the listed names'} "
                       "(e.g. 'archive/'), so archived copies are never listed as new files")

    @property
    def archive_target(self) -> ArchiveTarget | None:
        """Where ``archive`` retention copies objects, ``None`` for ``delete``."""
        if self.retention_action is not RetentionAction.archive:
            return None
        return ArchiveTarget(bucket=self.archive_bucket, prefix=self.archive_prefix)

    def _check_start_date(self) -> None:
        """``start_date``: an ISO date, kept as text."""
        if self.start_date is not None:
            try:
                parse_iso(str(self.start_date))
            except ValueError:
                self._fail("start_date", f"is {self.start_date!r}", "use an ISO date such as '2024-01-01'")
            object.__setattr__(self, "start_date", str(self.start_date))

    def _check_layout(self) -> None:
        set_ = object.__setattr__
        if self.clustering_fields is not None:
            value = self.clustering_fields
            if isinstance(value, str):
                value = [value]
            if (not isinstance(value, list | tuple) or not 1 <= len(value) <= 4 or len(set(value)) != len(value)
                    or not all(isinstance(v, str) and _IDENTIFIER_RE.match(v) for v in value)):
                self._fail("clustering_fields", f"is {self.clustering_fields!r}",
                           "give 1 to 4 distinct column names, e.g. ['address']")
            set_(self, "clustering_fields", tuple(value))
        if not isinstance(self.require_partition_filter, bool):
            self._fail("require_partition_filter", f"is {self.require_partition_filter!r}", "use true or false")
        if self.require_partition_filter and self.mode is SourceMode.Overwrite:
            self._fail("require_partition_filter", "is set for an Overwrite import",
                       "an Overwrite clean table is one snapshot with no partitions: leave it unset, or use Incremental")
        if self.table_description is not None and (
                not isinstance(self.table_description, str) or len(self.table_description) > 16384):
            self._fail("table_description", f"is {self.table_description!r}"[:80], "give a text of at most 16384 characters")
        self._check_raw_table_expiration()

    def _check_raw_table_expiration(self) -> None:
        """Refuse an expiry that could delete the only copy of loaded rows.

        After retention deletes an interval's files, its rows live in BigQuery only: in Overwrite
        mode the clean table holds the newest snapshot alone, so the raw tables are the only copy of
        every other interval (never expire them); in Incremental mode the raw table is what a
        re-publish and a pending-load recovery read, so it must outlive the files (more days than
        ``retention_days``).
        """
        days = self.raw_table_expiration_days
        if days is None:
            return
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RETENTION_DAYS:
            self._fail("raw_table_expiration_days", f"is {days!r}", f"use a whole number of days from 1 to {MAX_RETENTION_DAYS}")
        if self.mode is SourceMode.Overwrite:
            self._fail("raw_table_expiration_days", f"is {days} in an Overwrite import",
                       "leave it unset: after retention the raw tables hold the only copy of every interval but "
                       "the newest, so expiring them would lose loaded rows")
        if days <= self.retention_days:
            self._fail("raw_table_expiration_days", f"is {days}, not more than retention_days ({self.retention_days})",
                       f"use more than {self.retention_days} days, so a raw table outlives its interval's files")

    # -- derived values ---------------------------------------------------

    @property
    def effective_timestamp_format(self) -> str:
        return self.timestamp_format or self.interval.default_timestamp_format

    @property
    def effective_start(self) -> datetime:
        """The first interval's start (``start_date`` floored to the interval)."""
        return self.interval.floor(parse_iso(self.start_date or DEFAULT_START_DATE))

    @property
    def object_prefix(self) -> str:
        """The listing prefix: ``path_base/`` (or the whole bucket when ``path_base`` is empty)."""
        return f"{self.path_base}/" if self.path_base else ""

    @property
    def name_pattern(self) -> re.Pattern[str]:
        """The full-match pattern for object names: escaped ``path_base/`` then ``file_match``."""
        return re.compile(re.escape(self.object_prefix) + "(?:" + self.file_match + ")")

    def raw_table_id(self, interval_start: datetime) -> str:
        """``project.dataset.table__suffix`` of the raw table for one interval."""
        return self.raw_table_for_suffix(self.interval.table_suffix(interval_start))

    def raw_table_for_suffix(self, suffix: str) -> str:
        """The raw table of the interval whose table suffix is ``suffix`` (``YYYYMMDD[HH]``)."""
        return f"{self.project_id}.{self.raw_dataset_name}.{self.destination_table}__{suffix}"

    def gcs_bucket(self, client: Any) -> Any:
        """The ``google.cloud.storage`` bucket handle, billing ``billing_project`` when set (Requester Pays)."""
        return client.bucket(self.bucket_name, user_project=self.billing_project)

    @property
    def clean_table_id(self) -> str:
        return f"{self.project_id}.{self.clean_dataset_name}.{self.destination_table}"

    @property
    def pending_table_id(self) -> str:
        """Loads whose copy into a raw table may have run but whose ledger write has not (see worker.ledger)."""
        return f"{self.project_id}.{self.raw_dataset_name}._gcs_import_pending"

    @property
    def ledger_table_id(self) -> str:
        """The table in the raw dataset that records what every run loaded (shared by all specs)."""
        return f"{self.project_id}.{self.raw_dataset_name}._gcs_import_ledger"

    def fingerprint(self) -> str:
        """A short hash of the fields that change what a load job does (part of job ids)."""
        load_fields = {
            k: v for k, v in self.to_dict().items()
            # Fields that do not change what a load job reads or writes; leaving them out also keeps
            # the digest of existing specs (an upgrade that adds such a field must not reload anything).
            if k not in {"retention_days", "key_prefix", "start_date", "location", "allow_empty_snapshot", "billing_project",
                         "schema_evolution", "clustering_fields", "require_partition_filter", "table_description",
                         "raw_table_expiration_days", "on_bad_file", "max_concurrent_intervals",
                         # when an interval is loaded and what retention does afterwards, not what a load reads
                         "notifications_subscription", "complete_when", "retention_action", "archive_bucket",
                         "archive_prefix"}
        }
        if load_fields.get("schema"):  # descriptions document columns; they do not change what is loaded
            load_fields["schema"] = [{k: v for k, v in f.items() if k != "description"} for f in load_fields["schema"]]
        if not load_fields.get("load_options"):
            # options all at their defaults: the digest of a spec from before load_options existed
            load_fields.pop("load_options", None)
        return hashlib.sha256(json.dumps(load_fields, sort_keys=True).encode()).hexdigest()[:12]

    def unescaped_extension_dot(self) -> str | None:
        """``file_match`` with its extension dots escaped, when it has an unescaped one (else None).

        ``scores.parquet`` (as in the seed) also matches ``scoresXparquet``: regex semantics are
        kept, and the orchestrator warns once when definitions load, suggesting this form.
        """
        escaped = _UNESCAPED_EXTENSION_DOT.sub(r"\\\1", self.file_match)
        return escaped if escaped != self.file_match else None

    # -- JSON round trip --------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values of the spec's own fields (subclass fields are left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(ImportSpec):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif f.name == "schema" and value is not None:
                value = [item.to_dict() for item in value]
            elif f.name in ("key_prefix", "clustering_fields") and value is not None:
                value = list(value)
            elif f.name == "load_options":
                value = value.non_default()
            elif f.name == "complete_when" and value is not None:
                value = value.to_dict()
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportSpec:
        """Rebuild (and re-validate) a spec; unknown keys are an error that names them."""
        if not isinstance(data, Mapping):
            raise SpecError(f"an import spec is a JSON object of fields, not {json.dumps(data)[:80]}: "
                            "see the README's 'Running the worker by hand' for an example.")
        known = {f.name for f in dataclasses.fields(ImportSpec)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"import spec has unknown fields {unknown}: remove them (known fields: {sorted(known)})",
                            field=unknown[0])
        required = {
            f.name for f in dataclasses.fields(ImportSpec)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise SpecError(f"import spec {data.get('name', '?')!r} is missing required fields {missing}: add them.",
                            field=missing[0])
        return ImportSpec(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> ImportSpec:
        return cls.from_dict(json.loads(text))

    # -- helpers ------------------------------------------------------------

    def _fail(self, field_name: str, problem: str, fix: str) -> None:
        """Raise the :class:`SpecError` of ``field_name`` (a path such as ``schema[0].name`` names its top field)."""
        raise SpecError(f"{self.spec_label} {self.name!r}: field '{field_name}' {problem}: {fix}.",
                        field=_top_field(field_name))

    def _check_file_match(self) -> None:
        if not isinstance(self.file_match, str) or not self.file_match:
            self._fail("file_match", f"is {self.file_match!r}", "give a regular expression for names under path_base")
        # Names are always matched in full, so anchors add nothing; inside the combined pattern
        # (path_base/ + file_match) a '^' would never match. Accept them by dropping them.
        stripped = self.file_match.removeprefix("^")
        if stripped.endswith("$") and not stripped.endswith("\\$"):
            stripped = stripped[:-1]
        object.__setattr__(self, "file_match", stripped)
        try:
            compiled = re.compile(self.file_match)
        except re.error as exc:
            self._fail("file_match", f"does not compile ({exc})", "fix the regular expression")
        if TIMESTAMP_GROUP not in compiled.groupindex:
            self._fail(
                "file_match", f"{self.file_match!r} has no named group '{TIMESTAMP_GROUP}'",
                rf"capture the interval's timestamp, e.g. (?P<{TIMESTAMP_GROUP}>\d{{4}}-\d{{2}}-\d{{2}})/data.csv",
            )

    def _schema_field(self, index: int, item: SchemaFieldSpec | Mapping[str, str]) -> SchemaFieldSpec:
        if isinstance(item, Mapping):
            extra = set(item) - {"name", "type", "mode", "description"}
            if extra or "name" not in item or "type" not in item:
                self._fail(f"schema[{index}]", f"is {dict(item)!r}", "give {'name': ..., 'type': ..., 'mode': ...}")
            item = SchemaFieldSpec(name=item["name"], type=item["type"], mode=item.get("mode", "NULLABLE"),
                                   description=item.get("description"))
        if not isinstance(item, SchemaFieldSpec):
            self._fail(f"schema[{index}]", f"is {item!r}", "give a SchemaFieldSpec or a mapping with name and type")
        for part in ("name", "type", "mode"):
            if not isinstance(getattr(item, part), str):
                self._fail(f"schema[{index}].{part}", f"is {getattr(item, part)!r}", "give a string")
        if not _IDENTIFIER_RE.match(item.name) or len(item.name) > 300:
            self._fail(f"schema[{index}].name", f"is {item.name!r}", "use letters, digits or underscores, not starting with a digit")
        type_ = item.type.upper()
        mode = item.mode.upper()
        if type_ not in _FIELD_TYPES:
            self._fail(f"schema[{index}].type", f"is {item.type!r}", f"use one of {sorted(_FIELD_TYPES)}")
        if mode not in _FIELD_MODES:
            self._fail(f"schema[{index}].mode", f"is {item.mode!r}", f"use one of {sorted(_FIELD_MODES)}")
        if item.description is not None and (not isinstance(item.description, str) or len(item.description) > 1024):
            self._fail(f"schema[{index}].description", f"is {item.description!r}"[:80], "give a text of at most 1024 characters")
        return SchemaFieldSpec(name=item.name, type=type_, mode=mode, description=item.description)


#: The fields held as enum members, in the order they are coerced.
_ENUM_FIELDS: dict[str, type[enum.Enum]] = {
    "interval": Interval, "mode": SourceMode, "format": SourceFormat,
    "schema_evolution": SchemaEvolution, "on_bad_file": OnBadFile, "retention_action": RetentionAction,
}


def _top_field(path: str) -> str:
    """The top-level field of a field path: ``schema[0].name`` -> ``schema``, ``load_options.quote`` -> ``load_options``."""
    return path.split("[", 1)[0].split(".", 1)[0]


def _coerce_enum(spec: ImportSpec, field_name: str, enum_cls: type[enum.Enum]) -> Any:
    value = getattr(spec, field_name)
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if value.lower() in (member.name.lower(), str(member.value).lower()):
                return member
    choices = ", ".join(m.name for m in enum_cls)
    spec._fail(field_name, f"is {value!r}", f"use one of {choices}")
    raise AssertionError("unreachable")

