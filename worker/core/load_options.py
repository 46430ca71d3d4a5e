"""BigQuery load job options beyond format, schema, header rows and delimiter (spec field ``load_options``).

Each option is validated when the spec is built (a wrong value names ``load_options.<option>``; the formats an
option applies to are their profiles' in :mod:`worker.core.formats`), sent
in every load job of the interval, and part of the load-settings digest, so a change reloads open
intervals. Only options set to something other than their default enter the digest: a spec that
leaves them all unset has exactly the digest it had before this module existed (an upgrade reloads
nothing).

References: https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from worker.core.formats import SourceFormat, formats_accepting

if TYPE_CHECKING:
    from google.cloud import bigquery

_ENCODINGS = ("UTF-8", "ISO-8859-1", "UTF-16BE", "UTF-16LE", "UTF-32BE", "UTF-32LE")
_DECIMAL_TYPES = ("NUMERIC", "BIGNUMERIC", "STRING")
#: BigQuery's format elements are letters, digits and separators; no quotes or control characters.
_FORMAT_RE = re.compile(r"^[A-Za-z0-9%:.,/ _\-+TZ]{1,64}$")
_TIME_ZONE_RE = re.compile(r"^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}|[+-]\d{2}(:?\d{2})?)$")


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """Load job options; ``None`` (or the default) means BigQuery's own default."""

    #: CSV: the quote character (one character; ``""`` for none). BigQuery's default: ``"``.
    quote: str | None = None
    #: CSV: the files' character encoding. BigQuery's default: UTF-8.
    encoding: str | None = None
    #: CSV: the string that means NULL (e.g. ``\\N``). BigQuery's default: the empty string.
    null_marker: str | None = None
    #: CSV: accept rows missing trailing optional columns (they read NULL).
    allow_jagged_rows: bool = False
    #: CSV: accept quoted values that contain newlines.
    allow_quoted_newlines: bool = False
    #: CSV: keep ASCII control characters (0x01-0x1F) instead of rejecting the row.
    preserve_ascii_control_characters: bool = False
    #: CSV, JSON: ignore values of columns the schema does not have (instead of a bad record).
    ignore_unknown_values: bool = False
    #: Parquet: read LIST logical types as arrays of their element type.
    enable_list_inference: bool = False
    #: Parquet: the types DECIMAL columns may become, e.g. ``["NUMERIC", "BIGNUMERIC"]``.
    decimal_target_types: tuple[str, ...] | None = None
    #: CSV, JSON: the time zone of TIMESTAMP values without one (e.g. ``Europe/Berlin``).
    time_zone: str | None = None
    #: CSV, JSON: how DATE, DATETIME, TIME and TIMESTAMP values are written (BigQuery format elements,
    #: e.g. ``MM/DD/YYYY``).
    date_format: str | None = None
    datetime_format: str | None = None
    time_format: str | None = None
    timestamp_format: str | None = None
    #: Avro: load logical types (timestamp-micros, date, ...) as TIMESTAMP, DATE, ... (``True``) or as their raw
    #: types, INTEGER (``False``). ``None`` (unset): logical types, except where the spec's explicit schema or an
    #: existing clean table holds the raw types (see :func:`worker.core.formats.avro_logical_types`).
    #: https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-avro#logical_types
    use_avro_logical_types: bool | None = None

    @classmethod
    def parse(cls, value: Any, *, source_format: str) -> tuple[LoadOptions, str | None]:
        """``(options, None)`` or ``(default options, "problem: fix")`` naming ``load_options.<option>``.

        An option set to anything but its default must be one ``source_format``'s profile accepts
        (:attr:`worker.core.formats.FormatProfile.load_options`).
        """
        accepted = SourceFormat(source_format).profile.load_options
        if value is None:
            return cls(), None
        if isinstance(value, LoadOptions):
            value = value.non_default()
        if not isinstance(value, Mapping):
            return cls(), f"'load_options' is {value!r}: give a mapping of load options, e.g. {{'quote': \"'\"}}"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            return cls(), f"'load_options' has unknown options {unknown}: use {sorted(known)}"
        for name, option in value.items():
            problem = _check(name, option)
            if problem:
                return cls(), f"'load_options.{name}' is {option!r}: {problem}"
            if name not in accepted and option not in (None, False):
                formats = " and ".join(f.value for f in formats_accepting(name))
                return cls(), (f"'load_options.{name}' applies to {formats} files, not {source_format}: "
                               "remove it or change format")
        values = dict(value)
        if values.get("decimal_target_types") is not None:
            values["decimal_target_types"] = tuple(t.upper() for t in values["decimal_target_types"])
        if values.get("encoding") is not None:
            values["encoding"] = values["encoding"].upper()
        return cls(**values), None

    def non_default(self) -> dict[str, Any]:
        """The options set to something other than their default (JSON-ready): what the digest sees."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def apply(self, config: bigquery.LoadJobConfig) -> None:
        """Set the options that are one ``LoadJobConfig`` attribute each (only the ones set).

        The others (``enable_list_inference``, ``use_avro_logical_types``) are set by their format's profile
        (:attr:`worker.core.formats.FormatProfile.fill`).
        """
        values = self.non_default()
        for name, attribute in _JOB_ATTRIBUTES.items():
            if name in values:
                setattr(config, attribute, values[name])


#: option -> the ``LoadJobConfig`` attribute it sets as it is.
_JOB_ATTRIBUTES = {
    "quote": "quote_character", "encoding": "encoding", "null_marker": "null_marker",
    "allow_jagged_rows": "allow_jagged_rows", "allow_quoted_newlines": "allow_quoted_newlines",
    "preserve_ascii_control_characters": "preserve_ascii_control_characters",
    "ignore_unknown_values": "ignore_unknown_values", "decimal_target_types": "decimal_target_types",
    "time_zone": "time_zone", "date_format": "date_format", "datetime_format": "datetime_format",
    "time_format": "time_format", "timestamp_format": "timestamp_format",
}


def _check(name: str, value: Any) -> str | None:
    """The problem with one option's value and its fix, or None."""
    if name in ("allow_jagged_rows", "allow_quoted_newlines", "preserve_ascii_control_characters",
                "ignore_unknown_values", "enable_list_inference"):
        return None if isinstance(value, bool) else "use true or false"
    if name == "use_avro_logical_types":
        return None if value is None or isinstance(value, bool) else "use true or false (or leave it unset)"
    if value is None:
        return None
    if name == "quote":
        return None if isinstance(value, str) and len(value) <= 1 else "use one character, or '' for no quoting"
    if name == "encoding":
        return None if isinstance(value, str) and value.upper() in _ENCODINGS else f"use one of {list(_ENCODINGS)}"
    if name == "null_marker":
        printable = isinstance(value, str) and len(value) <= 64 and value.isprintable()
        return None if printable else "use a short printable string such as '\\\\N'"
    if name == "decimal_target_types":
        ok = (isinstance(value, list | tuple) and value and len(set(value)) == len(value)
              and all(isinstance(t, str) and t.upper() in _DECIMAL_TYPES for t in value))
        return None if ok else f"use a list of distinct types from {list(_DECIMAL_TYPES)}"
    if name == "time_zone":
        return None if isinstance(value, str) and _TIME_ZONE_RE.match(value) else "use a time zone such as 'UTC' or 'Europe/Berlin'"
    # date_format, datetime_format, time_format, timestamp_format
    return None if isinstance(value, str) and _FORMAT_RE.match(value) else "use BigQuery format elements such as 'MM/DD/YYYY'"
