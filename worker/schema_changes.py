"""Schema differences: between an interval and the one loaded before it (the ``schema_unchanged``
check), and between an interval and the Incremental clean table (schema evolution).

:func:`plan_clean_table_evolution` is pure: columns in, the changes to apply (or the reason the
interval cannot be published) out; :mod:`worker.publishing` carries them out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from worker.core.errors import WorkerError
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec, SchemaEvolution


class ColumnChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    TYPE_CHANGED = "type changed"
    MODE_CHANGED = "mode changed"
    #: A REQUIRED clean column became NULLABLE (``add_and_relax``).
    RELAXED = "relaxed"


@dataclass(frozen=True)
class ColumnChange:
    """One column's difference, as the ``schema_unchanged`` check's table shows it."""

    column: str
    change: ColumnChangeKind
    before: str = "-"
    after: str = "-"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    mode: str = "NULLABLE"

    @classmethod
    def of(cls, field: bigquery.SchemaField) -> Column:
        return cls(name=field.name, type=_type_name(field), mode=field.mode or "NULLABLE")

    def describe(self) -> str:
        return f"{self.type} {self.mode}"


@dataclass(frozen=True)
class EvolutionPlan:
    """What publishing an interval does to the clean table's columns."""

    #: Columns to add (NULLABLE), in the interval's order.
    add: tuple[Column, ...] = ()
    #: REQUIRED clean columns to make NULLABLE.
    relax: tuple[str, ...] = ()
    #: Why the interval cannot be published (the clean table is then left unchanged), or None.
    refusal: str | None = None

    @property
    def changes(self) -> tuple[ColumnChange, ...]:
        return (
            *(ColumnChange(c.name, ColumnChangeKind.ADDED, "-", c.describe()) for c in self.add),
            *(ColumnChange(n, ColumnChangeKind.RELAXED, "REQUIRED", "NULLABLE") for n in self.relax),
        )


def _type_name(field: bigquery.SchemaField) -> str:
    # the legacy and standard names of one type are the same type
    aliases = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}
    return aliases.get(field.field_type, field.field_type)


def plan_clean_table_evolution(
    *, clean: Sequence[Column], interval: Sequence[Column], mode: SchemaEvolution, interval_label: str,
    clean_table: str, reserved: Sequence[str] = (),
) -> EvolutionPlan:
    """Decide how the interval's columns reach the clean table.

    - a column of both with another type (or REPEATED on one side only): refused in every mode,
      naming the column, both types, the interval and the table;
    - a column the clean table lacks: ``fail`` refuses, naming the columns and the fix; the other
      modes add it as NULLABLE (a STRUCT column is refused: its fields would have to be spelt out);
    - a REQUIRED clean column the interval leaves out (or has as NULLABLE): ``add_and_relax``
      relaxes it to NULLABLE; the other modes refuse, since the publish would write NULLs into it.
    """
    # BigQuery column names are case-insensitive: `score` and `Score` are one column
    by_name = {c.name.lower(): c for c in clean if c.name.lower() not in {r.lower() for r in reserved}}

    def clean_of(c: Column) -> Column | None:
        return by_name.get(c.name.lower())

    changed = [
        f"{c.name!r} is {clean_of(c).describe()} in {clean_table} but {c.describe()} in interval {interval_label}"
        for c in interval
        if clean_of(c) is not None
        and (c.type != clean_of(c).type or (c.mode == "REPEATED") != (clean_of(c).mode == "REPEATED"))
    ]
    if changed:
        return EvolutionPlan(refusal=(
            f"column types differ: {'; '.join(changed)}. Nothing was published; a type change needs a new "
            "clean table (or a view that casts), or files fixed at the source."
        ))
    new = tuple(c for c in interval if clean_of(c) is None)
    interval_names = {c.name.lower(): c for c in interval}
    required_left = tuple(
        c.name for key, c in by_name.items()
        if c.mode == "REQUIRED" and (key not in interval_names or interval_names[key].mode != "REQUIRED")
    )
    if new and mode is SchemaEvolution.fail:
        return EvolutionPlan(refusal=(
            f"Interval {interval_label} has columns {[c.name for c in new]} that {clean_table} does not have; "
            f"{clean_table} was left unchanged. Set schema_evolution to 'add_columns' to add them, add them "
            "to the clean table (ALTER TABLE ... ADD COLUMN) or fix the files, then re-run."
        ))
    structs = [c.name for c in new if c.type == "STRUCT"]
    if structs:
        return EvolutionPlan(refusal=(
            f"Interval {interval_label} has new STRUCT columns {structs} that {clean_table} does not have; "
            f"{clean_table} was left unchanged. Add them with their fields (ALTER TABLE ... ADD COLUMN), then re-run."
        ))
    if required_left and mode is not SchemaEvolution.add_and_relax:
        return EvolutionPlan(refusal=(
            f"Interval {interval_label} leaves REQUIRED columns {list(required_left)} of {clean_table} empty; "
            f"{clean_table} was left unchanged. Set schema_evolution to 'add_and_relax' to make them NULLABLE, "
            "or fix the files, then re-run."
        ))
    return EvolutionPlan(add=new, relax=required_left if mode is SchemaEvolution.add_and_relax else ())


def widened_schema(schema: Sequence[bigquery.SchemaField], *, add: Sequence[bigquery.SchemaField] = (),
                   relax: Sequence[str] = ()) -> list[bigquery.SchemaField] | None:
    """``schema`` with the ``add`` columns the table lacks appended (NULLABLE, or REPEATED as they are) and the
    ``relax`` columns made NULLABLE; None when that changes nothing (pure; names compared case-insensitively,
    every other property of an existing column kept)."""
    relaxed = {name.lower() for name in relax}
    changed = False
    out = []
    for field in schema:
        if field.name.lower() in relaxed and field.mode == "REQUIRED":
            field = bigquery.SchemaField.from_api_repr({**field.to_api_repr(), "mode": "NULLABLE"})
            changed = True
        out.append(field)
    have = {field.name.lower() for field in schema}
    for field in add:
        if field.name.lower() in have:
            continue
        mode = "REPEATED" if field.mode == "REPEATED" else "NULLABLE"
        out.append(bigquery.SchemaField.from_api_repr({**field.to_api_repr(), "mode": mode}))
        have.add(field.name.lower())
        changed = True
    return out if changed else None


#: Reads of a table before :func:`widen_table` gives up on a table that keeps changing under it.
WIDEN_ATTEMPTS = 5


def widen_table(client: bigquery.Client, table_id: str, *, add: Sequence[bigquery.SchemaField] = (),
                relax: Sequence[str] = (), budget: RetryBudget) -> bigquery.Table:
    """Add columns to ``table_id`` and relax REQUIRED ones to NULLABLE with **one** table update.

    BigQuery allows at most 5 metadata updates per table per 10 seconds
    (https://cloud.google.com/bigquery/quotas#standard_tables), and DDL counts: one ``ALTER TABLE`` per
    column hits the limit at the sixth column. One ``tables.patch`` with the whole schema adds any number of
    NULLABLE columns and relaxes modes at once
    (https://cloud.google.com/bigquery/docs/managing-table-schemas: add columns, and change a column's mode
    from REQUIRED to NULLABLE, by supplying the full schema to ``tables.patch``/``tables.update``).

    The patch is conditional on the table's ETag (the client sends ``If-Match``): a schema patch that was
    computed from a stale read could drop a column a concurrent publish just added, which BigQuery refuses.
    On 412 the table is read again and the patch recomputed (nothing is sent when the columns are there).

    Raises:
        google.api_core.exceptions.GoogleAPIError: BigQuery refused the read or the patch.
        WorkerError: the table changed under every one of :data:`WIDEN_ATTEMPTS` reads.
    """
    for _ in range(WIDEN_ATTEMPTS):
        table = client.get_table(table_id, retry=budget.retry, timeout=budget.request_timeout)
        schema = widened_schema(table.schema, add=add, relax=relax)
        if schema is None:
            return table
        table.schema = schema
        try:
            return client.update_table(table, ["schema"], retry=budget.retry, timeout=budget.request_timeout)
        except gexc.PreconditionFailed:
            continue  # the table changed since it was read (a concurrent publish or upgrade): read it again
    raise WorkerError(f"{table_id} kept changing while its columns {[f.name for f in add]} were added: something "
                      "else updates it continuously; re-run when it is quiet.")


def diff_columns(before: Sequence[Column], after: Sequence[Column]) -> tuple[ColumnChange, ...]:
    """Added, removed and retyped columns from ``before`` to ``after`` (pure)."""
    old = {c.name: c for c in before}
    new = {c.name: c for c in after}
    out = [ColumnChange(n, ColumnChangeKind.ADDED, "-", new[n].describe()) for n in new if n not in old]
    out += [ColumnChange(n, ColumnChangeKind.REMOVED, old[n].describe(), "-") for n in old if n not in new]
    for name in (n for n in new if n in old):
        if new[name].type != old[name].type:
            out.append(ColumnChange(name, ColumnChangeKind.TYPE_CHANGED, old[name].describe(), new[name].describe()))
        elif new[name].mode != old[name].mode:
            out.append(ColumnChange(name, ColumnChangeKind.MODE_CHANGED, old[name].describe(), new[name].describe()))
    return tuple(out)


def schema_change_from_previous(bq: bigquery.Client, spec: ImportSpec, *, previous: datetime | None,
                                schema: tuple[bigquery.SchemaField, ...], budget: RetryBudget,
                                previous_schema: Sequence[bigquery.SchemaField] | None = None,
                                ) -> tuple[str | None, tuple[ColumnChange, ...]]:
    """How this interval's columns differ from those of the interval loaded before it (``previous``, whose raw
    table is read unless ``previous_schema`` is given): ``(summary line, changes)``, ``(None, ())`` when they
    match or there is no previous interval."""
    if previous is None:
        return None, ()
    before = previous_schema
    if before is None:
        try:
            before = bq.get_table(spec.raw_table_id(previous), retry=budget.retry, timeout=budget.request_timeout).schema
        except gexc.NotFound:  # the previous raw table was dropped by someone: nothing to compare
            return None, ()
    old = [(f.name, f.field_type, f.mode) for f in before]
    new = [(f.name, f.field_type, f.mode) for f in schema]
    if old == new:
        return None, ()
    changes = diff_columns([Column.of(f) for f in before], [Column.of(f) for f in schema])
    added = [c.column for c in changes if c.change is ColumnChangeKind.ADDED]
    removed = [c.column for c in changes if c.change is ColumnChangeKind.REMOVED]
    line = (f"columns differ from interval {spec.interval.table_suffix(previous)}: added {added}, removed {removed}, "
            f"before {old}, now {new}")
    return line, changes
