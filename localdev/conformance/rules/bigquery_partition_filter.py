"""A table with ``requirePartitionFilter`` refuses statements that cannot eliminate partitions.

Google: "If you set the require partition filter option, then queries against the table must include a
WHERE clause that can be used for partition elimination" (managing-partitioned-tables#require-filter),
also for ``UPDATE``/``DELETE``/``MERGE``; a filter qualifies when it compares the partitioning column
with a constant expression or a query parameter (querying-partitioned-tables: pruning needs a filter
whose value is known before the query runs, not one computed from other tables). The refusal is
``400 invalidQuery`` "Cannot query over table 'p.d.t' without a filter over column(s) 'c' that can be
used for partition elimination". bqemulator ignores the option entirely (tables.get does not even show
it), so the rule remembers it from tables.insert/patch/update and adds it to the emulator's answers.

``MERGE`` (using-dml-with-partitioned-tables, "pruning partitions when using MERGE"): the target is
pruned by a filter in the merge condition (``ON``) or a ``search_condition``. ``ON T.col = S.col``
is not one (its value comes from the source at run time). A ``WHEN NOT MATCHED BY SOURCE`` clause
acts on exactly the target rows the ``ON`` condition leaves out, so the target can only be pruned
when the ``ON`` condition *and* every such clause carry a partition filter of their own (the rows a
statement may touch are those matching the ``ON`` filter or some clause's filter).
"""

from __future__ import annotations

import re
import threading

from localdev.conformance.bigquery_writes import _COMMENT, query_text, table_name
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef, bigquery_error, failed_job
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

_NAME = r"(?:`[^`]+`|[A-Za-z_][\w-]*)(?:\.(?:`[^`]+`|[A-Za-z_][\w-]*))*"
_KEYWORDS = {"ON", "USING", "SET", "WHERE", "WHEN", "AS", "JOIN", "LEFT", "RIGHT", "INNER", "FULL", "CROSS",
             "GROUP", "ORDER", "LIMIT", "UNION", "WINDOW", "QUALIFY", "HAVING", "FOR", "TABLESAMPLE"}
_TARGET = re.compile(rf"^\s*(?:UPDATE|DELETE\s+(?:FROM\s+)?|MERGE\s+(?:INTO\s+)?)({_NAME})(?:\s+(?:AS\s+)?(\w+))?", re.I)
_READ = re.compile(rf"\b(?:FROM|JOIN|USING)\s+({_NAME})(?:\s+(?:AS\s+)?(\w+))?", re.I)
#: A value known before the query runs: a query parameter, a literal, a typed literal, a constant function.
_VALUE = (r"(?:@\w+|'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|(?:TIMESTAMP|DATE|DATETIME)\s*(?:'[^']*'|\(\s*(?:@\w+|'[^']*')\s*\))"
          r"|CURRENT_(?:TIMESTAMP|DATE|DATETIME)\s*\(\s*\))")
_OP = r"(?:=|!=|<>|<=|>=|<|>)"
INGESTION_COLUMNS = ("_PARTITION_LOAD_TIME", "_PARTITIONDATE", "_PARTITIONTIME")


class RequirePartitionFilter(Rule):
    name = "bigquery_partition_filter"
    doc = "https://cloud.google.com/bigquery/docs/managing-partitioned-tables#require-filter"
    service = Service.BIGQUERY
    assumed = ("Google does not spell out which MERGE forms pass the check: the rule asks for a filter in the ON "
               "condition and in every WHEN NOT MATCHED BY SOURCE clause (see the module doc); it does not fold "
               "constants (ON FALSE, a NULL source column) the way BigQuery's optimizer may, and it finds a filter "
               "anywhere in an UPDATE/DELETE/SELECT (an OR around it is not checked)")

    def __init__(self) -> None:
        self._required: dict[TableRef, bool] = {}  # what tables.insert/patch/update set
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._required.clear()

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        route = exchange.bigquery_route
        if route is None or route.table is None or not 200 <= reply.status < 300:
            return reply
        body = exchange.json
        with self._lock:
            if route.call is BigQueryCall.TABLES_DELETE:
                self._required.pop(route.table, None)
                return reply
            if route.call in (BigQueryCall.TABLES_INSERT, BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE):
                if "requirePartitionFilter" in body:
                    self._required[route.table] = bool(body["requirePartitionFilter"])
                elif "requirePartitionFilter" in (body.get("timePartitioning") or {}):
                    self._required[route.table] = bool(body["timePartitioning"]["requirePartitionFilter"])
                elif route.call is not BigQueryCall.TABLES_PATCH:
                    self._required[route.table] = False  # a new or wholly replaced definition
            required = self._required.get(route.table)
        if required and route.call in (BigQueryCall.TABLES_INSERT, BigQueryCall.TABLES_GET,
                                       BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE):
            reply.set_json({**reply.json, "requirePartitionFilter": True})  # in place: not counted as answered
        return reply

    def _table(self, world: World, table: TableRef) -> dict | None:
        found = world.upstream.table(table)
        with self._lock:
            required = self._required.get(table)
        return {**found, "requirePartitionFilter": True} if found is not None and required else found

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        found = query_text(exchange)
        if found is None or not found[0].strip():
            return None
        project = exchange.bigquery_route.project
        for statement in _COMMENT.sub(" ", found[0]).split(";"):
            for table, columns in self._unfiltered(statement, project=project, dataset=found[1], world=world):
                message = (f"Cannot query over table '{table}' without a filter over column(s) "
                           f"{', '.join(repr(c) for c in columns)} that can be used for partition elimination")
                if exchange.bigquery_route.call is BigQueryCall.JOBS_INSERT:
                    return failed_job(exchange, reason="invalidQuery", message=message)
                return bigquery_error(400, "invalidQuery", message)
        return None

    def _unfiltered(self, statement: str, *, project: str, dataset: str | None,
                    world: World) -> list[tuple[TableRef, tuple[str, ...]]]:
        """Each table of ``statement`` that requires a partition filter the statement lacks."""
        refs: list[tuple[str, str | None, bool]] = []  # (name, alias, is the MERGE target)
        is_merge = bool(re.match(r"^\s*MERGE\b", statement, re.I))
        if target := _TARGET.match(statement):
            refs.append((target.group(1), _alias(target.group(2)), is_merge))
        refs += [(m.group(1), _alias(m.group(2)), False) for m in _READ.finditer(statement)
                 if not statement[m.end(1):].lstrip().startswith("(")]
        missing = []
        seen: set[TableRef] = set()
        for text, alias, merge_target in refs:
            if text.startswith("(") or (table := table_name(text, default_project=project,
                                                             default_dataset=dataset)) is None or table in seen:
                continue
            seen.add(table)
            columns = partition_filter_columns(self._table(world, table))
            if not columns:
                continue
            qualifiers = [q for q in (alias, table.table, text.strip("`")) if q]
            places = merge_filter_places(statement) if merge_target else [statement]
            if not all(any(has_partition_filter(place, column, qualifiers) for column in columns) for place in places):
                missing.append((table, columns))
        return missing


def _alias(word: str | None) -> str | None:
    return word if word and word.upper() not in _KEYWORDS else None


def partition_filter_columns(table: dict | None) -> tuple[str, ...]:
    """The columns a filter must name when ``table`` (a tables.get resource) requires one, else ()."""
    if not table:
        return ()
    time_partitioning = table.get("timePartitioning") or {}
    required = table.get("requirePartitionFilter") or time_partitioning.get("requirePartitionFilter")
    if not required:
        return ()
    if time_partitioning:
        return (time_partitioning["field"],) if time_partitioning.get("field") else INGESTION_COLUMNS
    field = (table.get("rangePartitioning") or {}).get("field")
    return (field,) if field else ()


def has_partition_filter(text: str, column: str, qualifiers: list[str]) -> bool:
    """Whether ``text`` compares ``column`` (bare or qualified) with a value known before the query runs."""
    names = "|".join(re.escape(q) for q in qualifiers)
    col = rf"(?<![\w.`])(?:(?:`?(?:{names})`?)\.)?`?{re.escape(column)}`?(?![\w`])"
    patterns = (rf"{col}\s*{_OP}\s*{_VALUE}", rf"{_VALUE}\s*{_OP}\s*{col}",
                rf"{col}\s+BETWEEN\s+{_VALUE}\s+AND\s+{_VALUE}", rf"{col}\s+IN\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)")
    return any(re.search(p, text, re.I) for p in patterns)


def merge_filter_places(statement: str) -> list[str]:
    """The parts of a MERGE that must each carry a target partition filter: the ON condition and the
    search condition of every WHEN NOT MATCHED BY SOURCE clause ("" for an unconditional one)."""
    using = re.search(r"\bUSING\b", statement, re.I)
    if using is None:
        return [""]
    rest = statement[using.end():].lstrip()
    if rest.startswith("("):
        depth = 0
        for index, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                rest = rest[index + 1:]
                break
    on = re.search(r"\bON\b", rest, re.I)
    if on is None:
        return [""]
    clauses = re.split(r"\bWHEN\b", rest[on.end():], flags=re.I)
    places = [clauses[0]]
    for clause in clauses[1:]:
        if by_source := re.match(r"\s*NOT\s+MATCHED\s+BY\s+SOURCE\b(.*?)\bTHEN\b", clause, re.I | re.S):
            condition = re.match(r"\s*AND\b(.*)", by_source.group(1), re.I | re.S)
            places.append(condition.group(1) if condition else "")
    return places
