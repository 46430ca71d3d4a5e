"""tables.get shows the columns ``ALTER TABLE ... ADD COLUMN`` added (bqemulator keeps the old schema)."""

from __future__ import annotations

import threading

from localdev.conformance.bigquery_writes import WriteKind, query_text, statement_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World


class SchemaAfterAlter(Rule):
    """After an ``ALTER TABLE`` the table's metadata lists the added columns (NULLABLE), as BigQuery's does."""

    name = "bigquery_schema_after_alter"
    doc = "https://cloud.google.com/bigquery/docs/managing-table-schemas#add_a_nullable_column"
    service = Service.BIGQUERY

    def __init__(self) -> None:
        self._altered: set[TableRef] = set()
        self._lock = threading.Lock()

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        route = exchange.bigquery_route
        if (sql := query_text(exchange)) is not None and reply.status == 200:
            altered = [w.table for w in statement_writes(sql[0], default_project=route.project, default_dataset=sql[1])
                       if w.kind is WriteKind.DDL and w.statement.upper().startswith("ALTER")]
            with self._lock:
                self._altered.update(altered)
            return reply
        if route.call not in (BigQueryCall.TABLES_GET, BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE) \
                or reply.status != 200 or route.table not in self._altered:
            return reply
        table = reply.json
        fields = (table.get("schema") or {}).get("fields") or []
        t = route.table
        seen = _query_schema(world, t)
        known = {f["name"].lower() for f in fields}
        added = [f for f in seen if f["name"].lower() not in known]
        if not added:
            return reply
        table["schema"] = {"fields": [*fields, *({**f, "mode": "NULLABLE"} for f in added)]}
        reply.set_json(table)
        return reply


def _query_schema(world: World, table: TableRef) -> list[dict]:
    status, body = world.upstream.bigquery("POST", f"/bigquery/v2/projects/{table.project}/queries", {
        "query": f"SELECT * FROM `{table.project}`.`{table.dataset}`.`{table.table}` LIMIT 0", "useLegacySql": False})
    return ((body.get("schema") or {}).get("fields") or []) if status == 200 else []
