"""The file formats a BigQuery load job reads from GCS."""

from __future__ import annotations

import enum


class SourceFormat(enum.Enum):
    """File formats a BigQuery load job reads from GCS."""

    PARQUET = "PARQUET"
    CSV = "CSV"
    NEWLINE_DELIMITED_JSON = "NEWLINE_DELIMITED_JSON"
    AVRO = "AVRO"
    ORC = "ORC"
