"""At most 5 table metadata update operations per table per 10 seconds.

Google's quota page counts ``tables.insert``, ``tables.patch``, ``tables.update``, DDL on the table and
jobs that write it (load, copy, and query jobs with a destination table); DML statements have their
own limits and are not counted here. A job over the limit fails with ``rateLimitExceeded``; a table call
answers 403 ``rateLimitExceeded`` (https://cloud.google.com/bigquery/docs/troubleshoot-quotas).
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque

from localdev.conformance.bigquery_writes import WriteKind, table_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef, bigquery_error, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

LIMIT = 5
WINDOW_SECONDS = 10.0
MESSAGE = ("Exceeded rate limits: too many table update operations for this table. For more information, see "
           "https://cloud.google.com/bigquery/docs/troubleshoot-quotas")
_COUNTED = (WriteKind.TABLE_CALL, WriteKind.DDL, WriteKind.JOB_OUTPUT)


class TableUpdateRate(Rule):
    name = "bigquery_table_update_rate"
    doc = "https://cloud.google.com/bigquery/quotas#standard_tables"
    service = Service.BIGQUERY

    def __init__(self) -> None:
        self._updates: dict[TableRef, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._updates.clear()

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        tables = {w.table for w in table_writes(exchange) if w.kind in _COUNTED}
        if not tables:
            return None
        now = world.clock.now().timestamp()
        with self._lock:
            for table in tables:
                recent = self._updates[table]
                while recent and recent[0] <= now - WINDOW_SECONDS:
                    recent.popleft()
                if len(recent) >= LIMIT:
                    if exchange.bigquery_route.call is BigQueryCall.JOBS_INSERT:
                        return failed_job(exchange, reason="rateLimitExceeded", message=MESSAGE)
                    return bigquery_error(403, "rateLimitExceeded", MESSAGE)
        exchange.notes[self.name] = tables
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        """Count the update once the service carried it out (a refused request updated nothing)."""
        tables = exchange.notes.pop(self.name, None)
        if tables and reply.status == 200 and not (reply.json.get("status") or {}).get("errorResult"):
            now = world.clock.now().timestamp()
            with self._lock:
                for table in tables:
                    self._updates[table].append(now)
        return reply
