"""Table and partition expiry: a dataset's defaults apply to every table created in it, and BigQuery
deletes what expires.

bqemulator neither applies ``defaultTableExpirationMs`` / ``defaultPartitionExpirationMs`` nor keeps
``expirationTime``, and never deletes anything. This rule keeps its own record of every table it sees
created and deletes on the emulator what BigQuery would have deleted by then.

What Google documents, and the rule does:

- Dataset ``defaultTableExpirationMs``: "all newly-created tables in the dataset will have an
  expirationTime property set to the creation time plus the value in this property ... If a table's
  expirationTime is modified or removed before the table expires, or if you provide an explicit
  expirationTime when creating a table, that value takes precedence"
  (https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets#Dataset.FIELDS.default_table_expiration_ms,
  https://cloud.google.com/bigquery/docs/updating-datasets#table-expiration). "Newly-created" means by
  ``tables.insert`` and by jobs that create their destination (load, copy, query, ``CREATE TABLE``).
  "No expiry" is a removed ``expirationTime``: a tables.patch setting it to null (what
  ``bq update --expiration 0`` sends); an insert cannot say it (an absent field takes the default).
- Dataset ``defaultPartitionExpirationMs``: newly-created partitioned tables get
  ``timePartitioning.expirationMs`` = the default unless the table sets its own; "Setting this property
  overrides the use of defaultTableExpirationMs for partitioned tables"
  (https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets#Dataset.FIELDS.default_partition_expiration_ms).
  A negative ``expirationMs`` means no expiration (``bq --time_partitioning_expiration``: "A negative
  number indicates no expiration", sent as is); a patch setting it to null clears it too.
- A partition expires at "its partition time plus this value" (TimePartitioning.expirationMs,
  https://cloud.google.com/bigquery/docs/reference/rest/v2/tables#TimePartitioning): from the partition's
  lower boundary in UTC (https://cloud.google.com/bigquery/docs/managing-partitioned-tables#partition-expiration).
  Its rows are deleted; the table stays.
- A copy job's ``destinationExpirationTime`` sets the destination's expiry
  (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationTableCopy).

Assumed (not documented): a copy, load or query job writing a table that already exists keeps the
table's expiry (unless a copy sets ``destinationExpirationTime``); a copy does not carry the source's
``expirationTime`` to a destination it creates (the destination is a new table: the dataset default
applies). :meth:`TableExpiry.copies_keep_source_expiry` turns the latter around for a test that must
hold either way.

Time: the proxy's clock (``World.clock``) is the service's. A client computes absolute expiry times from
its own clock (the real one, which a test does not move), so a time a client sends is taken as meant
on that clock: the rule adds the clock's current offset, and shows times back without it. Expiry is
checked lazily, at each request.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from localdev.conformance.bigquery_writes import JobKind, WriteKind, job_kind, query_text, statement_writes, table_writes
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef
from localdev.conformance.rules.base import Rule
from localdev.conformance.world import World

_ANSWERS = (BigQueryCall.TABLES_GET, BigQueryCall.TABLES_INSERT, BigQueryCall.TABLES_PATCH,
            BigQueryCall.TABLES_UPDATE)


@dataclass(frozen=True)
class Partitioning:
    type: str = "DAY"  # HOUR, DAY, MONTH, YEAR
    field: str | None = None  # None: ingestion time (_PARTITIONTIME)


@dataclass(frozen=True)
class Record:
    """One table's expiry, in proxy time (ms since the epoch); None: never."""

    expires_ms: int | None = None
    partitioning: Partitioning | None = None
    partition_ms: int | None = None


class TableExpiry(Rule):
    name = "bigquery_table_expiry"
    doc = "https://cloud.google.com/bigquery/docs/updating-datasets#table-expiration"
    service = Service.BIGQUERY
    assumed = ("a job writing an existing table keeps its expiry; a copy does not carry the source's expirationTime "
               "to a table it creates (see the module doc)")

    def __init__(self) -> None:
        self._records: dict[TableRef, Record] = {}
        self._dirty: set[TableRef] = set()  # partitioned tables written since their last sweep
        self._swept: dict[TableRef, int] = {}  # the partition boundary below which rows were last deleted
        self._lock = threading.RLock()
        self._keep_source = False
        self.deleted_tables: list[TableRef] = []

    # --- what tests use ------------------------------------------------------------------------
    def copies_keep_source_expiry(self, keep: bool = True) -> None:
        """Model a copy that carries its source's expirationTime to the table it creates (undocumented)."""
        self._keep_source = keep

    def record(self, table: TableRef) -> Record | None:
        with self._lock:
            return self._records.get(table)

    def reset(self) -> None:
        self._keep_source = False

    # --- the pipeline --------------------------------------------------------------------------
    def before(self, exchange: Exchange, world: World) -> Reply | None:
        self._sweep(world)
        route = exchange.bigquery_route
        if route.call is BigQueryCall.TABLES_INSERT and route.table:
            exchange.notes[self.name] = ("insert", self._dataset_defaults(world, route.table))
        elif (found := job_kind(exchange)) is not None:
            kind, config = found
            destination = TableRef.from_resource(config.get("destinationTable"), default_project=route.project)
            if destination is not None and kind in (JobKind.COPY, JobKind.LOAD, JobKind.QUERY):
                existed = self.record(destination) is not None or world.upstream.table(destination) is not None
                exchange.notes[self.name] = ("job", destination, existed, self._dataset_defaults(world, destination))
        if (sql := query_text(exchange)) is not None:
            created = [w for w in statement_writes(sql[0], default_project=route.project, default_dataset=sql[1])
                       if w.kind is WriteKind.DDL and re.match(r"\s*CREATE\b", w.statement, re.I)]
            exchange.notes[f"{self.name}.ddl"] = [(w, self._dataset_defaults(world, w.table)) for w in created]
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        route = exchange.bigquery_route
        ok = reply.status == 200 and not (reply.json.get("status") or {}).get("errorResult")
        if ok:
            self._remember(exchange, route, world)
        if route.call in _ANSWERS and reply.status == 200 and route.table:
            return self._show(reply, self.record(route.table), world)
        if route.call is BigQueryCall.TABLES_LIST and reply.status == 200:
            return self._show_list(reply, route.project, world)
        return reply

    # --- records -------------------------------------------------------------------------------
    def _remember(self, exchange: Exchange, route, world: World) -> None:
        now = world.clock.now_ms()
        offset = _offset_ms(world)
        note = exchange.notes.get(self.name)
        with self._lock:
            if route.call is BigQueryCall.TABLES_INSERT and note and route.table:
                self._records[route.table] = _created(exchange.json, note[1], now=now, offset=offset)
            elif route.call in (BigQueryCall.TABLES_PATCH, BigQueryCall.TABLES_UPDATE) and route.table:
                self._records[route.table] = _patched(self._records.get(route.table, Record()), exchange.json,
                                                      full=route.call is BigQueryCall.TABLES_UPDATE, offset=offset)
            elif route.call is BigQueryCall.TABLES_DELETE and route.table:
                self._forget(route.table)
            elif note and note[0] == "job":
                _, destination, existed, defaults = note
                kind, config = job_kind(exchange)
                self._job_wrote(kind, config, destination, existed, defaults, now=now, offset=offset,
                                project=route.project)
            for write, defaults in exchange.notes.get(f"{self.name}.ddl", []):
                self._records[write.table] = _created_by_ddl(write.statement, defaults, now=now, offset=offset)
            sql = query_text(exchange)
            if sql is not None:
                for write in statement_writes(sql[0], default_project=route.project, default_dataset=sql[1]):
                    if write.kind is WriteKind.DDL and re.match(r"\s*DROP\b", write.statement, re.I):
                        self._forget(write.table)
                    elif write.kind is WriteKind.DDL and re.match(r"\s*ALTER\b", write.statement, re.I):
                        self._records[write.table] = _altered(self._records.get(write.table, Record()),
                                                              write.statement, offset=offset)
            self._dirty.update(w.table for w in table_writes(exchange))

    def _job_wrote(self, kind: JobKind, config: dict, destination: TableRef, existed: bool,
                   defaults: tuple[int | None, int | None], *, now: int, offset: int, project: str) -> None:
        given = _ms(config.get("destinationExpirationTime")) if kind is JobKind.COPY else None
        if existed:
            record = self._records.get(destination, Record())
            if given is not None:
                record = replace(record, expires_ms=given + offset)
            self._records[destination] = record
            return
        partitioning, partition_given = None, None
        if kind is JobKind.COPY:
            sources = config.get("sourceTables") or [config.get("sourceTable")]
            source = TableRef.from_resource(sources[0], default_project=project) if sources and sources[0] else None
            source_record = self._records.get(source) if source else None
            if source_record is not None:
                partitioning, partition_given = source_record.partitioning, source_record.partition_ms
            if given is None and self._keep_source and source_record is not None:
                self._records[destination] = replace(source_record)
                return
        elif config.get("timePartitioning"):
            tp = config["timePartitioning"]
            partitioning = Partitioning(tp.get("type", "DAY"), tp.get("field"))
            partition_given = _partition_ms(tp) if "expirationMs" in tp else None
        record = _with_defaults(Record(partitioning=partitioning, partition_ms=partition_given), defaults, now=now,
                                partition_set=partition_given is not None)
        if given is not None:
            record = replace(record, expires_ms=given + offset)
        self._records[destination] = record

    def _forget(self, table: TableRef) -> None:
        self._records.pop(table, None)
        self._dirty.discard(table)
        self._swept.pop(table, None)

    # --- expiry --------------------------------------------------------------------------------
    def _sweep(self, world: World) -> None:
        """Delete on the emulator what expired by the proxy's clock: whole tables, and expired partitions' rows."""
        now = world.clock.now_ms()
        with self._lock:
            for table, record in list(self._records.items()):
                if record.expires_ms is not None and record.expires_ms <= now:
                    world.upstream.bigquery("DELETE", table.path)
                    self._forget(table)
                    self.deleted_tables.append(table)
                    continue
                if record.partitioning is None or record.partition_ms is None or record.partitioning.field is None:
                    continue
                boundary = _partition_end(record.partitioning.type, now - record.partition_ms)
                if self._swept.get(table) == boundary and table not in self._dirty:
                    continue
                column = record.partitioning.field.replace("`", "")
                try:
                    world.upstream.query(table.project, f"DELETE FROM `{table.project}`.`{table.dataset}`.`{table.table}` "
                                                        f"WHERE `{column}` < TIMESTAMP '{_iso(boundary)}'")
                except RuntimeError:
                    continue  # the table is gone, or its column is a DATE the emulator compares otherwise
                self._swept[table] = boundary
                self._dirty.discard(table)

    @staticmethod
    def _dataset_defaults(world: World, table: TableRef) -> tuple[int | None, int | None]:
        status, body = world.upstream.bigquery("GET", f"/bigquery/v2/projects/{table.project}/datasets/{table.dataset}")
        if status != 200:
            return None, None
        return _ms(body.get("defaultTableExpirationMs")), _ms(body.get("defaultPartitionExpirationMs"))

    # --- answers -------------------------------------------------------------------------------
    def _show(self, reply: Reply, record: Record | None, world: World) -> Reply:
        """The table as BigQuery shows it: its expiry from the record (a new Reply when it differs)."""
        if record is None:
            return reply
        table = json.loads(reply.body)
        _apply(table, record, offset=_offset_ms(world))
        return _changed(reply, table)

    def _show_list(self, reply: Reply, project: str, world: World) -> Reply:
        body = json.loads(reply.body)
        for item in body.get("tables") or []:
            record = self.record(TableRef.from_resource(item.get("tableReference"), default_project=project))
            if record is not None:
                _apply(item, record, offset=_offset_ms(world))
        return _changed(reply, body)


def _changed(reply: Reply, payload: dict) -> Reply:
    if payload == reply.json:
        return reply
    changed = Reply(status=reply.status, headers=dict(reply.headers), body=b"")
    changed.set_json(payload)
    return changed


def _apply(table: dict, record: Record, *, offset: int) -> None:
    table.pop("expirationTime", None)
    if record.expires_ms is not None:
        table["expirationTime"] = str(record.expires_ms - offset)
    if isinstance(table.get("timePartitioning"), dict):
        table["timePartitioning"].pop("expirationMs", None)
        if record.partition_ms is not None:
            table["timePartitioning"]["expirationMs"] = str(record.partition_ms)


def _created(body: dict, defaults: tuple[int | None, int | None], *, now: int, offset: int) -> Record:
    tp = body.get("timePartitioning")
    partitioning = Partitioning(tp.get("type", "DAY"), tp.get("field")) if isinstance(tp, dict) else None
    partition_set = isinstance(tp, dict) and tp.get("expirationMs") is not None
    record = Record(partitioning=partitioning, partition_ms=_partition_ms(tp) if partition_set else None)
    record = _with_defaults(record, defaults, now=now, partition_set=partition_set)
    if body.get("expirationTime") is not None:
        record = replace(record, expires_ms=_ms(body["expirationTime"]) + offset)
    return record


def _with_defaults(record: Record, defaults: tuple[int | None, int | None], *, now: int,
                   partition_set: bool) -> Record:
    table_default, partition_default = defaults
    if record.partitioning is not None and partition_default is not None:
        # "only one of defaultTableExpirationMs and defaultPartitionExpirationMs will be used"
        return record if partition_set else replace(record, partition_ms=partition_default)
    return replace(record, expires_ms=now + table_default) if table_default is not None else record


def _patched(record: Record, body: dict, *, full: bool, offset: int) -> Record:
    if "expirationTime" in body or full:
        given = _ms(body.get("expirationTime"))
        record = replace(record, expires_ms=None if given is None else given + offset)
    tp = body.get("timePartitioning")
    if isinstance(tp, dict):
        partitioning = Partitioning(tp.get("type", "DAY"), tp.get("field"))
        record = replace(record, partitioning=partitioning)
        if "expirationMs" in tp or full:
            record = replace(record, partition_ms=_partition_ms(tp))
    return record


_OPTION = r"{}\s*=\s*(NULL|TIMESTAMP\s*'[^']*'|[\d.]+)"


def _created_by_ddl(statement: str, defaults: tuple[int | None, int | None], *, now: int, offset: int) -> Record:
    partitioning = None
    if found := re.search(r"PARTITION\s+BY\s+(?:(?:TIMESTAMP_TRUNC|DATE_TRUNC|DATE)\s*\(\s*)?`?(\w+)`?"
                          r"(?:\s*,\s*(\w+))?", statement, re.I):
        column = found.group(1)
        partitioning = Partitioning((found.group(2) or "DAY").upper(), None if column.startswith("_PARTITION") else column)
    record = _with_defaults(Record(partitioning=partitioning), defaults, now=now,
                            partition_set=bool(re.search(_OPTION.format("partition_expiration_days"), statement, re.I)))
    return _altered(record, statement, offset=offset)


def _altered(record: Record, statement: str, *, offset: int) -> Record:
    """``OPTIONS(expiration_timestamp=..., partition_expiration_days=...)`` of a CREATE or ALTER statement."""
    if found := re.search(_OPTION.format("expiration_timestamp"), statement, re.I):
        value = found.group(1)
        if value.upper() == "NULL":
            record = replace(record, expires_ms=None)
        else:
            when = datetime.fromisoformat(value.split("'")[1].replace(" UTC", "+00:00").replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            record = replace(record, expires_ms=int(when.timestamp() * 1000) + offset)
    if found := re.search(_OPTION.format("partition_expiration_days"), statement, re.I):
        value = found.group(1)
        record = replace(record, partition_ms=None if value.upper() == "NULL" else int(float(value) * 86_400_000))
    return record


def _partition_ms(tp: dict | None) -> int | None:
    value = _ms((tp or {}).get("expirationMs"))
    return value if value is not None and value > 0 else None


def _ms(value) -> int | None:
    """Milliseconds since the epoch (or a duration) from an API value: an integer, its string, or RFC 3339."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return int(float(text))
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def _offset_ms(world: World) -> int:
    return int(world.clock.offset / timedelta(milliseconds=1))


def _partition_end(unit: str, at_ms: int) -> int:
    """The upper boundary (ms) of the ``unit`` partition holding ``at_ms``: every partition below it expired."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    unit = unit.upper()
    if unit == "HOUR":
        start, end = at.replace(minute=0, second=0, microsecond=0), timedelta(hours=1)
        return int((start + end).timestamp() * 1000)
    if unit == "MONTH":
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return int(nxt.timestamp() * 1000)
    if unit == "YEAR":
        return int(datetime(at.year + 1, 1, 1, tzinfo=UTC).timestamp() * 1000)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return int((start + timedelta(days=1)).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S+00")
