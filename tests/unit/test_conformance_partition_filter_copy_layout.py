"""The ``bigquery_partition_filter`` and ``bigquery_copy_layout`` rules on hand-built requests, with the
emulator's tables.get answered by a dict (no emulator)."""

from __future__ import annotations

import json

import pytest

from localdev.conformance.exchange import Exchange, TableRef
from localdev.conformance.rules.bigquery_copy_layout import CopyLayout, layout_spec
from localdev.conformance.rules.bigquery_partition_filter import RequirePartitionFilter, merge_filter_places
from localdev.conformance.world import Clock, Upstream, World

P = "/bigquery/v2/projects/p"
PARTITIONED = {"timePartitioning": {"type": "DAY", "field": "day"}, "requirePartitionFilter": True}


class Tables(Upstream):
    """tables.get from a dict of ``d.t`` -> resource."""

    def __init__(self, tables: dict[str, dict]) -> None:
        super().__init__("http://127.0.0.1:9", "http://127.0.0.1:9")
        self.tables = tables

    def table(self, table: TableRef) -> dict | None:
        return self.tables.get(f"{table.dataset}.{table.table}")


def world(**tables: dict) -> World:
    return World(clock=Clock(), upstream=Tables({k.replace("__", "."): v for k, v in tables.items()}))


def request(body: dict, path: str = f"{P}/jobs") -> Exchange:
    return Exchange.parse(method="POST", target=path, headers={}, body=json.dumps(body).encode())


def query_job(sql: str) -> Exchange:
    return request({"jobReference": {"projectId": "p", "jobId": "q1"},
                    "configuration": {"query": {"query": sql, "useLegacySql": False}}})


def refusal(rule, exchange: Exchange, w: World) -> str | None:
    reply = rule.before(exchange, w)
    if reply is None:
        return None
    error = reply.json.get("status", {}).get("errorResult") or reply.json.get("error", {})
    return error.get("message")


MERGE_TODAY = ("MERGE `p.d.clean` T USING (SELECT *, CAST(NULL AS TIMESTAMP) AS nm FROM `p.d.raw`) S "
               "ON T.`day` = S.nm WHEN NOT MATCHED BY SOURCE AND T.`day` = @interval_start THEN DELETE "
               "WHEN NOT MATCHED THEN INSERT (a, `day`) VALUES (S.a, @interval_start)")
MERGE_FILTERED = MERGE_TODAY.replace("ON T.`day` = S.nm", "ON T.`day` = S.nm AND T.`day` = @interval_start")


@pytest.mark.parametrize(("sql", "refused"), [
    (MERGE_TODAY, True),  # the filter only in the NOT MATCHED BY SOURCE clause: the ON condition scans every partition
    (MERGE_FILTERED, False),
    ("MERGE d.clean T USING d.raw S ON T.day = S.day WHEN MATCHED THEN DELETE", True),  # T.col = S.col eliminates nothing
    ("MERGE d.clean T USING d.raw S ON T.id = S.id AND T.day >= '2024-01-01' WHEN NOT MATCHED BY SOURCE THEN DELETE",
     True),  # an unconditional NOT MATCHED BY SOURCE clause acts on every partition
    ("MERGE d.clean T USING d.raw S ON T.id = S.id AND T.day = DATE '2024-01-01' WHEN MATCHED THEN UPDATE SET a = 1",
     False),
    ("DELETE FROM `p.d.clean` WHERE a = 1", True),
    ("DELETE FROM `p.d.clean` WHERE `day` = @d AND a = 1", False),
    ("UPDATE d.clean SET a = 2 WHERE day BETWEEN '2024-01-01' AND '2024-01-02'", False),
    ("SELECT COUNT(*) FROM `p`.`d`.`clean`", True),
    ("SELECT COUNT(*) FROM `p`.`d`.`clean` c WHERE c.day IN ('2024-01-01', '2024-01-02')", False),
    ("SELECT * FROM d.clean c JOIN d.other o ON c.day = o.day", True),  # a value from another table is not known up front
    ("SELECT * FROM d.raw", False),  # no filter needed
])
def test_statements_on_a_table_that_requires_a_partition_filter(sql, refused):
    message = refusal(RequirePartitionFilter(), query_job(sql), world(d__clean=PARTITIONED, d__raw={}, d__other={}))
    if refused:
        assert message == ("Cannot query over table 'p.d.clean' without a filter over column(s) 'day' that can be "
                           "used for partition elimination")
    else:
        assert message is None


def test_the_option_in_time_partitioning_and_ingestion_time_tables_count_too():
    ingestion = {"timePartitioning": {"type": "DAY", "requirePartitionFilter": True}}
    rule = RequirePartitionFilter()
    message = refusal(rule, query_job("SELECT * FROM d.t"), world(d__t=ingestion))
    assert message and "'_PARTITIONTIME'" in message
    assert refusal(rule, query_job("SELECT * FROM d.t WHERE _PARTITIONTIME = TIMESTAMP('2024-01-01')"),
                   world(d__t=ingestion)) is None
    # jobs.query answers 400 itself
    sync = request({"query": "SELECT * FROM d.t", "useLegacySql": False}, path=f"{P}/queries")
    reply = rule.before(sync, world(d__t=ingestion))
    assert reply is not None and reply.status == 400 and reply.json["error"]["errors"][0]["reason"] == "invalidQuery"


def test_merge_filter_places_are_the_on_condition_and_each_not_matched_by_source_clause():
    assert [p.strip() for p in merge_filter_places(MERGE_TODAY)] == ["T.`day` = S.nm", "T.`day` = @interval_start"]


def copy_job(source: str, destination: str, disposition: str = "WRITE_TRUNCATE") -> Exchange:
    ref = lambda t: {"projectId": "p", "datasetId": "d", "tableId": t}  # noqa: E731
    return request({"jobReference": {"projectId": "p", "jobId": "c1"}, "configuration": {"copy": {
        "sourceTables": [ref(source)], "destinationTable": ref(destination), "writeDisposition": disposition}}})


CLUSTERED = {"clustering": {"fields": ["name"]}}


@pytest.mark.parametrize(("source", "destination", "disposition", "refused"), [
    ({}, CLUSTERED, "WRITE_TRUNCATE", "Expects partitioning specification clustering(name), but input partitioning "
                                      "specification is none"),
    ({}, CLUSTERED, "WRITE_APPEND", "clustering(name)"),
    (CLUSTERED, CLUSTERED, "WRITE_TRUNCATE", None),
    ({}, None, "WRITE_TRUNCATE", None),  # no destination yet: the copy creates it with the source's layout
    ({}, {"timePartitioning": {"type": "DAY", "field": "day"}}, "WRITE_APPEND", "interval(type:day,field:day)"),
    ({}, CLUSTERED, "WRITE_EMPTY", None),
])
def test_a_copy_onto_a_table_laid_out_otherwise_fails(source, destination, disposition, refused):
    tables = {"d__src": source} | ({"d__dst": destination} if destination is not None else {})
    reply = CopyLayout().before(copy_job("src", "dst", disposition), world(**tables))
    if refused is None:
        assert reply is None
    else:
        assert reply is not None and reply.status == 200  # jobs.insert accepted it; the job failed
        error = reply.json["status"]["errorResult"]
        assert error["reason"] == "invalid" and error["message"].startswith("Incompatible table partitioning")
        assert refused in error["message"]


def test_layout_spec_prints_partitioning_then_clustering():
    table = {"timePartitioning": {"type": "MONTH", "field": "ts"}, "clustering": {"fields": ["a", "b"]}}
    assert layout_spec(table) == "interval(type:month,field:ts) clustering(a,b)"
    assert layout_spec({}) == "none"
