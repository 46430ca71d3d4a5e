"""Mutating DML per table: at most 2 run at once and 20 wait; conflicting concurrent mutations fail.

bqemulator runs statements one after another. The rule holds a statement while 2 mutating DML
statements of its table run, fails it when 20 already wait ("Too many DML statements outstanding"),
and fails an UPDATE/DELETE/MERGE that starts while another one on the same table runs ("Could not
serialize access ... due to concurrent update"): BigQuery commits the first and fails the other when
both touch the same partitions. Assumed: the rule treats any two concurrent mutations of one table as
conflicting (stricter than BigQuery when their partitions differ).
"""

from __future__ import annotations

import threading
from collections import Counter

from localdev.conformance.bigquery_writes import WriteKind, table_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef, bigquery_error, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

RUNNING = 2
QUEUED = 20


class DmlConcurrency(Rule):
    name = "bigquery_dml_concurrency"
    doc = "https://cloud.google.com/bigquery/docs/data-manipulation-language#dml_statement_conflicts"
    service = Service.BIGQUERY
    assumed = "every two concurrent UPDATE/DELETE/MERGE statements of a table conflict (see the module doc)"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: Counter[TableRef] = Counter()
        self._mutating: Counter[TableRef] = Counter()
        self._waiting: Counter[TableRef] = Counter()

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        writes = [w for w in table_writes(exchange) if w.kind is WriteKind.DML]
        if not writes:
            return None
        table = writes[0].table
        mutating = any(not w.statement.upper().startswith("INSERT") for w in writes)
        with self._cond:
            if self._running[table] >= RUNNING and self._waiting[table] >= QUEUED:
                return self._fail(exchange, f"Resources exceeded during query execution: Too many DML statements "
                                            f"outstanding against table {table}, limit is {QUEUED}.")
            self._waiting[table] += 1
            while self._running[table] >= RUNNING:
                self._cond.wait()
            self._waiting[table] -= 1
            if mutating and self._mutating[table]:
                return self._fail(exchange, f"Could not serialize access to table {table} due to concurrent update")
            self._running[table] += 1
            self._mutating[table] += int(mutating)
        exchange.notes[self.name] = (table, mutating)
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        held = exchange.notes.pop(self.name, None)
        if held is not None:
            table, mutating = held
            with self._cond:
                self._running[table] -= 1
                self._mutating[table] -= int(mutating)
                self._cond.notify_all()
        return reply

    @staticmethod
    def _fail(exchange: Exchange, message: str) -> Reply:
        if exchange.bigquery_route.call is BigQueryCall.JOBS_INSERT:
            return failed_job(exchange, reason="invalidQuery", message=message)
        return bigquery_error(400, "invalidQuery", message)
