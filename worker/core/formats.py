"""The file formats a BigQuery load job reads from GCS, one profile each: a new format is one entry here.

Each member of :class:`SourceFormat` carries its :class:`FormatProfile`: whether BigQuery detects the
schema of files without a spec ``schema``, which ``load_options`` the format accepts, whether
``max_bad_records`` applies, and how the format fills a load job's configuration. The spec
(:mod:`worker.core.spec`), the option checks (:mod:`worker.core.load_options`) and the load job
(:func:`worker.loading.load_job_config`) read the profile and never branch on a format's name.

Adding a format: one member below (plus, if it needs one, its ``fill`` function beside the others),
and a sample file for the tests. BigQuery's names and rules per format:
https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad

This module imports no Google client at module level (the orchestrator imports it):
``fill`` functions import ``google.cloud.bigquery`` when they need it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import bigquery

    from worker.core.spec import ImportSpec

#: Fills the format's own settings into a load job's configuration. ``avro_logical`` is the raw-type
#: reload's override of ``useAvroLogicalTypes`` (see :func:`worker.loading.load_interval`); None means
#: "as the spec says". Only Avro reads it.
FillLoadJob = Callable[["bigquery.LoadJobConfig", "ImportSpec", "bool | None"], None]

#: BigQuery types an Avro logical type becomes with ``useAvroLogicalTypes`` (raw: INTEGER), see
#: https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types
AVRO_LOGICAL_TYPES = frozenset({"DATE", "TIME", "DATETIME", "TIMESTAMP"})

#: ``load_options`` shared by the text formats (CSV and newline-delimited JSON).
_TEXT_OPTIONS = frozenset({"ignore_unknown_values", "time_zone", "date_format", "datetime_format", "time_format",
                           "timestamp_format"})
_CSV_OPTIONS = _TEXT_OPTIONS | {"quote", "encoding", "null_marker", "allow_jagged_rows", "allow_quoted_newlines",
                                "preserve_ascii_control_characters"}


@dataclass(frozen=True, kw_only=True)
class FormatProfile:
    """What BigQuery does with one source format, and what the worker sends for it."""

    #: Without a spec ``schema``, the load job asks BigQuery to detect the columns (``autodetect``). False for
    #: self-describing formats: their files carry the schema.
    autodetect: bool
    #: The :class:`worker.core.load_options.LoadOptions` fields this format accepts; the spec refuses the
    #: others (set to anything but their default) naming the option and the formats it applies to.
    load_options: frozenset[str]
    #: BigQuery applies ``maxBadRecords``: "only supported for CSV and NEWLINE_DELIMITED_JSON" (it ignores the
    #: value for the others, so the spec refuses a non-zero ``max_bad_records`` there).
    max_bad_records: bool
    #: Sets what is specific to the format on a load job's configuration (settings from other spec fields,
    #: nested option objects, computed flags). Options that are one ``LoadJobConfig`` attribute each are set by
    #: :meth:`worker.core.load_options.LoadOptions.apply` for every format.
    fill: FillLoadJob


def avro_logical_types(spec: ImportSpec) -> bool:
    """Whether Avro loads of ``spec`` convert logical types (``useAvroLogicalTypes``).

    ``load_options.use_avro_logical_types`` when set. Unset: with an explicit schema, its types decide (a
    logical-typed field loads into a TIMESTAMP/DATE/TIME/DATETIME column only with logical types, into an
    INTEGER column only without), so a schema with none of those columns keeps the raw types it was written
    for; without a schema, logical types (an existing clean table that holds the raw types is kept so by
    :func:`worker.loading.load_interval`).
    """
    option = spec.load_options.use_avro_logical_types
    if option is not None:
        return option
    if spec.schema is not None:
        return any(f.type in AVRO_LOGICAL_TYPES for f in spec.schema)
    return True


def _fill_nothing(config: bigquery.LoadJobConfig, spec: ImportSpec, avro_logical: bool | None) -> None:
    """Formats with no settings of their own beyond the shared ones."""


def _fill_csv(config: bigquery.LoadJobConfig, spec: ImportSpec, avro_logical: bool | None) -> None:
    """The spec's header rows (0 included: sent, so BigQuery loads the first row) and delimiter."""
    config.skip_leading_rows = spec.csv_header_rows
    config.field_delimiter = spec.csv_delimiter


def _fill_parquet(config: bigquery.LoadJobConfig, spec: ImportSpec, avro_logical: bool | None) -> None:
    """``enable_list_inference`` (a nested ``parquetOptions`` object), sent only when set."""
    if spec.load_options.enable_list_inference:
        from google.cloud import bigquery

        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        config.parquet_options = parquet


def _fill_avro(config: bigquery.LoadJobConfig, spec: ImportSpec, avro_logical: bool | None) -> None:
    """``useAvroLogicalTypes``, always sent: :func:`avro_logical_types`, or the raw-type reload's override."""
    config.use_avro_logical_types = avro_logical_types(spec) if avro_logical is None else avro_logical


class SourceFormat(enum.Enum):
    """File formats a BigQuery load job reads from GCS; ``.value`` is BigQuery's name, ``.profile`` its profile.

    The members are the registry (:data:`PROFILES` is keyed by them), so a format and its profile are one
    entry and can never be declared apart.
    """

    profile: FormatProfile

    def __new__(cls, value: str, profile: FormatProfile) -> SourceFormat:
        member = object.__new__(cls)
        member._value_ = value
        member.profile = profile
        return member

    PARQUET = "PARQUET", FormatProfile(
        autodetect=False, load_options=frozenset({"enable_list_inference", "decimal_target_types"}),
        max_bad_records=False, fill=_fill_parquet)
    CSV = "CSV", FormatProfile(autodetect=True, load_options=_CSV_OPTIONS, max_bad_records=True, fill=_fill_csv)
    NEWLINE_DELIMITED_JSON = "NEWLINE_DELIMITED_JSON", FormatProfile(
        autodetect=True, load_options=_TEXT_OPTIONS, max_bad_records=True, fill=_fill_nothing)
    AVRO = "AVRO", FormatProfile(
        autodetect=False, load_options=frozenset({"use_avro_logical_types"}), max_bad_records=False, fill=_fill_avro)
    ORC = "ORC", FormatProfile(autodetect=False, load_options=frozenset(), max_bad_records=False, fill=_fill_nothing)


#: The registry: each format's profile (the same objects as ``SourceFormat.X.profile``), in declaration order.
PROFILES: Mapping[SourceFormat, FormatProfile] = MappingProxyType({f: f.profile for f in SourceFormat})


def formats_accepting(option: str) -> tuple[SourceFormat, ...]:
    """The formats whose profile accepts the load option ``option``, in declaration order (for messages)."""
    return tuple(f for f, profile in PROFILES.items() if option in profile.load_options)
