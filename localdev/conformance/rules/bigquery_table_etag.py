"""``If-Match`` on tables.patch/update: 412 when the table changed since the ETag was read; and a
table's ``lastModifiedTime`` that moves on with every write.

bqemulator ignores ``If-Match`` and keeps ``lastModifiedTime`` at the table's first write (a later
WRITE_TRUNCATE copy, a labels patch leave it as it was). The rule keeps its own version of each table,
moved on by every write it sees (table calls, DDL, DML, jobs writing the table, deletes), and answers
with an ETag derived from it and the (proxy) time of that write as ``lastModifiedTime``
(https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#Table.FIELDS.last_modified_time).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter

from localdev.conformance.bigquery_writes import table_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef, bigquery_error
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

_TABLE_ANSWERS = (BigQueryCall.TABLES_GET, BigQueryCall.TABLES_INSERT, BigQueryCall.TABLES_PATCH,
                  BigQueryCall.TABLES_UPDATE)


class TableEtag(Rule):
    name = "bigquery_table_etag"
    doc = "https://cloud.google.com/bigquery/docs/reference/rest/v2/tables/patch"  # and the ETag section of tables
    service = Service.BIGQUERY
    assumed = "the 412 payload's reason and message (Google documents If-Match and 412, not the text)"

    def __init__(self) -> None:
        self._versions: Counter[TableRef] = Counter()
        self._modified_ms: dict[TableRef, int] = {}
        self._lock = threading.Lock()

    def etag(self, table: TableRef) -> str:
        with self._lock:
            version = self._versions[table]
        return '"' + hashlib.sha256(f"{table}#{version}".encode()).hexdigest()[:16] + '"'

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        route = exchange.bigquery_route
        expected = exchange.headers.get("if-match")
        if route.call in (BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE) and expected and expected != "*" \
                and expected != self.etag(route.table):
            return bigquery_error(412, "conditionNotMet", "Precondition check failed.")
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        route = exchange.bigquery_route
        if reply.status == 200 and not (reply.json.get("status") or {}).get("errorResult"):
            written = {w.table for w in table_writes(exchange)}
            if route.call is BigQueryCall.TABLES_DELETE and route.table:
                written.add(route.table)
            if written:
                # in the emulator's time base (its job times are real time); a job's write commits by its end
                now_ms = int((reply.json.get("statistics") or {}).get("endTime") or time.time() * 1000)
                with self._lock:
                    self._versions.update(written)
                    self._modified_ms.update(dict.fromkeys(written, now_ms))
        if route.call in _TABLE_ANSWERS and reply.status == 200 and route.table and "etag" in reply.json:
            table = reply.json
            table["etag"] = self.etag(route.table)
            with self._lock:
                written_ms = self._modified_ms.get(route.table)
            if written_ms is not None:
                table["lastModifiedTime"] = str(max(written_ms, int(table.get("lastModifiedTime") or 0)))
            reply.set_json(table)
        return reply
