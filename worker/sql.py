"""Identifier quoting for the few SQL statements the worker writes.

Identifiers come from the validated spec (and BigQuery's own schemas) and are
re-checked here before being backtick-quoted; values are always query parameters.
"""

from __future__ import annotations

import re

_PART_RE = re.compile(r"^[A-Za-z0-9_\-.:]+$")


def quote_table(table_id: str) -> str:
    """``project.dataset.table`` as a backtick-quoted reference; raises ValueError on anything unexpected."""
    parts = table_id.rsplit(".", 2)
    if len(parts) != 3 or not all(parts) or not all(_PART_RE.match(p) for p in parts) or any("." in p for p in parts[1:]):
        raise ValueError(f"refusing to use {table_id!r} as a table reference in SQL")
    return "`" + "`.`".join(parts) + "`"


def quote_column(name: str) -> str:
    """A column name as a quoted identifier (backslashes and backticks escaped).

    Columns come from BigQuery's own schemas, which allow flexible names (``user-id``, ``2fa``,
    spaces); identifiers from configuration are validated by the spec before they get here.
    """
    if not isinstance(name, str) or not name or len(name) > 300 or any(ch in name for ch in "\n\r\x00"):
        raise ValueError(f"refusing to use {name!r} as a column name in SQL")
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
