"""Identifier quoting for the few SQL statements the worker writes.

Identifiers come from the validated spec (and BigQuery's own schemas) and are
re-checked here before being backtick-quoted; values are always query parameters.
"""

from __future__ import annotations

import re

_PART_RE = re.compile(r"^[A-Za-z0-9_\-.:]+$")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_table(table_id: str) -> str:
    """``project.dataset.table`` as a backtick-quoted reference; raises ValueError on anything unexpected."""
    parts = table_id.rsplit(".", 2)
    if len(parts) != 3 or not all(parts) or not all(_PART_RE.match(p) for p in parts) or any("." in p for p in parts[1:]):
        raise ValueError(f"refusing to use {table_id!r} as a table reference in SQL")
    return "`" + "`.`".join(parts) + "`"


def quote_column(name: str) -> str:
    """A column name, backtick-quoted; raises ValueError for names BigQuery could not have produced."""
    if not _COLUMN_RE.match(name):
        raise ValueError(f"refusing to use {name!r} as a column name in SQL")
    return f"`{name}`"
