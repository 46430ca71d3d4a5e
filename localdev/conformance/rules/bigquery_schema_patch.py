"""A ``tables.patch``/``tables.update`` that widens a table's schema adds the columns to its data.

BigQuery adds a column (NULLABLE or REPEATED) and relaxes REQUIRED to NULLABLE when the patched
schema lists it; the existing rows read NULL in it
(https://cloud.google.com/bigquery/docs/managing-table-schemas#add_columns_to_a_tables_schema_definition,
https://cloud.google.com/bigquery/docs/managing-table-schemas#change_a_columns_mode).
bqemulator stores the patched schema as metadata only: ``tables.get`` lists the column but the data
(DuckDB) lacks it, so a statement that writes it fails ("does not have a column with name"). After
the emulator accepted such a patch, the rule adds each missing column to the data with the emulator's
own ``ALTER TABLE ... ADD COLUMN`` (sent to the emulator directly: it is the same one update, not six).
REQUIRED is not enforced by DuckDB behind bqemulator, so a relaxation needs nothing on the data.
"""

from __future__ import annotations

from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

_STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


def ddl_type(field: dict) -> str:
    """A REST schema field's type as GoogleSQL DDL spells it (REPEATED as ARRAY, RECORD as STRUCT)."""
    kind = field.get("type", "STRING").upper()
    if kind in ("RECORD", "STRUCT"):
        inner = ", ".join(f"`{f['name']}` {ddl_type(f)}" for f in field.get("fields") or [])
        kind = f"STRUCT<{inner}>"
    else:
        kind = _STANDARD.get(kind, kind)
    return f"ARRAY<{kind}>" if field.get("mode") == "REPEATED" else kind


def data_columns(world: World, table: TableRef) -> list[str] | None:
    """The columns the emulator's data has (``SELECT * ... LIMIT 0``), None when the table cannot be read."""
    status, body = world.upstream.bigquery("POST", f"/bigquery/v2/projects/{table.project}/queries", {
        "query": f"SELECT * FROM `{table.project}`.`{table.dataset}`.`{table.table}` LIMIT 0", "useLegacySql": False})
    if status != 200 or body.get("errors"):
        return None
    return [f["name"] for f in (body.get("schema") or {}).get("fields") or []]


class SchemaPatchAddsColumns(Rule):
    name = "bigquery_schema_patch_adds_columns"
    doc = "https://cloud.google.com/bigquery/docs/managing-table-schemas#add_columns_to_a_tables_schema_definition"
    service = Service.BIGQUERY

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        route = exchange.bigquery_route
        if route.call not in (BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE) or reply.status != 200 \
                or route.table is None or "schema" not in exchange.json:
            return reply
        fields = (exchange.json.get("schema") or {}).get("fields") or []
        have = data_columns(world, route.table)
        if have is None:
            return reply
        known = {name.lower() for name in have}
        missing = [f for f in fields if f.get("name", "").lower() not in known]
        t = route.table
        for field in missing:
            world.upstream.query(t.project, f"ALTER TABLE `{t.project}`.`{t.dataset}`.`{t.table}` "
                                            f"ADD COLUMN IF NOT EXISTS `{field['name']}` {ddl_type(field)}")
        # a new Reply object: the proxy counts the rule as having changed this exchange
        return Reply(status=reply.status, headers=dict(reply.headers), body=reply.body) if missing else reply
