"""The conformance proxy's rules and request classification, each tested on hand-built requests
(no emulator): a rule that stopped refusing what Google refuses fails here."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from localdev.conformance.bigquery_writes import WriteKind, statement_writes, table_writes
from localdev.conformance.chaos import Chaos, ChaosKind
from localdev.conformance.exchange import BigQueryCall, Exchange, Reply, Service, TableRef
from localdev.conformance.rules import all_rules
from localdev.conformance.rules.bigquery_dml_concurrency import DmlConcurrency
from localdev.conformance.rules.bigquery_job_ids import ForeignJobs
from localdev.conformance.rules.bigquery_load_bad_records import LoadBadRecords
from localdev.conformance.rules.bigquery_load_uris import LoadUris
from localdev.conformance.rules.bigquery_request_size import MAX_REQUEST_BYTES, RequestSize
from localdev.conformance.rules.bigquery_table_etag import TableEtag
from localdev.conformance.rules.bigquery_table_update_rate import TableUpdateRate
from localdev.conformance.rules.storage_rules import BatchSize, RequesterPays
from localdev.conformance.storage_calls import StorageCall
from localdev.conformance.world import Clock, Upstream, World

P = "/bigquery/v2/projects/p"


def world() -> World:
    return World(clock=Clock(), upstream=Upstream("http://127.0.0.1:9", "http://127.0.0.1:9"))


def request(method: str, target: str, body: dict | bytes | None = None, **headers: str) -> Exchange:
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return Exchange.parse(method=method, target=target, headers=headers, body=data)


def load_job(destination: str = "t", **config) -> Exchange:
    return request("POST", f"{P}/jobs", {"jobReference": {"projectId": "p", "jobId": "j1"}, "configuration": {
        "load": {"destinationTable": {"projectId": "p", "datasetId": "d", "tableId": destination}, **config}}})


def query_job(sql: str, job_id: str = "q1") -> Exchange:
    return request("POST", f"{P}/jobs", {"jobReference": {"projectId": "p", "jobId": job_id},
                                         "configuration": {"query": {"query": sql, "useLegacySql": False}}})


def test_every_rule_links_google_documentation_and_has_a_unique_name():
    rules = all_rules()
    assert len({r.name for r in rules}) == len(rules)
    for rule in rules:
        assert rule.doc.startswith("https://"), rule.name
        assert rule.service in (Service.BIGQUERY, Service.STORAGE)


@pytest.mark.parametrize(("sql", "expected"), [
    ("MERGE `p.d.ledger` T USING (SELECT 1) S ON FALSE WHEN NOT MATCHED THEN INSERT ROW",
     [(TableRef("p", "d", "ledger"), WriteKind.DML)]),
    ("ALTER TABLE `p`.`d`.`t` ADD COLUMN IF NOT EXISTS x INT64", [(TableRef("p", "d", "t"), WriteKind.DDL)]),
    ("INSERT INTO d.t (a) VALUES (1); DELETE FROM `p.d.u` WHERE TRUE",
     [(TableRef("p", "d", "t"), WriteKind.DML), (TableRef("p", "d", "u"), WriteKind.DML)]),
    ("CREATE OR REPLACE TABLE `q.d.t` AS SELECT 1 AS a", [(TableRef("q", "d", "t"), WriteKind.DDL)]),
    ("-- UPDATE d.t SET a = 1\nSELECT * FROM d.t", []),
])
def test_statements_name_the_table_they_write(sql, expected):
    assert [(w.table, w.kind) for w in statement_writes(sql, default_project="p")] == expected


def test_jobs_and_table_calls_name_the_table_they_write():
    assert [(w.table, w.kind) for w in table_writes(load_job())] == [(TableRef("p", "d", "t"), WriteKind.JOB_OUTPUT)]
    patch = request("PATCH", f"{P}/datasets/d/tables/t", {"labels": {}})
    assert patch.bigquery_route.call is BigQueryCall.TABLES_PATCH
    assert [w.kind for w in table_writes(patch)] == [WriteKind.TABLE_CALL]
    assert table_writes(request("GET", f"{P}/datasets/d/tables/t")) == []


def test_sixth_table_update_within_ten_seconds_is_refused_then_allowed_after_the_window():
    rule, w = TableUpdateRate(), world()
    done = Reply(200, {}, b'{"status": {"state": "DONE"}}')
    for n in range(6):
        job = load_job()
        assert rule.before(job, w) is None
        # the third is refused by the service (or another rule): it updated nothing and is not counted
        rule.after(job, Reply(400, {}, b"{}") if n == 2 else done, w)
    refused = rule.before(load_job(), w)
    assert refused.status == 200 and refused.json["status"]["errorResult"]["reason"] == "rateLimitExceeded"
    assert "too many table update operations for this table" in refused.json["status"]["errorResult"]["message"]
    patch = rule.before(request("PATCH", f"{P}/datasets/d/tables/t", {}), w)
    assert (patch.status, patch.json["error"]["errors"][0]["reason"]) == (403, "rateLimitExceeded")
    other = load_job("other")
    assert rule.before(other, w) is None  # per table
    assert rule.before(query_job("INSERT INTO d.t VALUES (1)"), w) is None  # DML is not a metadata update
    w.clock.offset += timedelta(seconds=10.5)
    assert rule.before(load_job(), w) is None


def test_if_match_with_a_stale_etag_is_refused_after_the_table_changed():
    rule, w = TableEtag(), world()
    get = request("GET", f"{P}/datasets/d/tables/t")
    answer = rule.after(get, Reply(200, {}, json.dumps({"etag": "emulator", "id": "p:d.t"}).encode()), w)
    etag = answer.json["etag"]
    assert rule.before(request("PATCH", f"{P}/datasets/d/tables/t", {}, **{"If-Match": etag}), w) is None
    rule.after(load_job(), Reply(200, {}, b'{"status": {"state": "DONE"}}'), w)  # the table changed
    refused = rule.before(request("PATCH", f"{P}/datasets/d/tables/t", {}, **{"If-Match": etag}), w)
    assert refused.status == 412
    failed = Reply(200, {}, json.dumps({"status": {"errorResult": {"reason": "x"}}}).encode())
    fresh = rule.etag(TableRef("p", "d", "t"))
    rule.after(load_job(), failed, w)  # a failed job wrote nothing
    assert rule.etag(TableRef("p", "d", "t")) == fresh


def test_a_second_concurrent_mutation_of_a_table_fails_and_inserts_run_two_at_a_time():
    rule, w = DmlConcurrency(), world()
    first = query_job("UPDATE `p.d.t` SET a = 1 WHERE TRUE")
    assert rule.before(first, w) is None
    conflict = rule.before(query_job("DELETE FROM `p.d.t` WHERE TRUE", "q2"), w)
    assert "Could not serialize access to table p.d.t due to concurrent update" in conflict.json["status"]["errorResult"]["message"]
    rule.after(first, Reply(200, {}, b"{}"), w)
    insert_a, insert_b = query_job("INSERT INTO `p.d.t` VALUES (1)", "a"), query_job("INSERT INTO `p.d.t` VALUES (2)", "b")
    assert rule.before(insert_a, w) is None and rule.before(insert_b, w) is None
    third = query_job("INSERT INTO `p.d.t` VALUES (3)", "c")
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (rule.before(third, w), done.set()))
    waiter.start()
    assert not done.wait(0.3), "a third statement must wait while two run"
    rule.after(insert_a, Reply(200, {}, b"{}"), w)
    assert done.wait(2)
    waiter.join()


def test_max_bad_records_is_dropped_where_bigquery_ignores_it():
    rule, w = LoadBadRecords(), world()
    parquet = load_job(sourceFormat="PARQUET", maxBadRecords=5)
    rule.before(parquet, w)
    assert "maxBadRecords" not in parquet.json["configuration"]["load"]
    csv = load_job(sourceFormat="CSV", maxBadRecords=5)
    rule.before(csv, w)
    assert csv.json["configuration"]["load"]["maxBadRecords"] == 5


def test_consecutive_slashes_in_a_load_uri_collapse_as_bigquery_reads_them():
    job = load_job(sourceFormat="CSV", sourceUris=["gs://b/x//y.csv", "gs://b/plain.csv"])
    assert LoadUris().before(job, world()) is None
    assert job.json["configuration"]["load"]["sourceUris"] == ["gs://b/x/y.csv", "gs://b/plain.csv"]


def test_requests_over_ten_megabytes_are_refused():
    rule, w = RequestSize(), world()
    assert rule.before(request("POST", f"{P}/jobs", b"x" * MAX_REQUEST_BYTES), w) is None
    assert rule.before(request("POST", f"{P}/jobs", b"x" * (MAX_REQUEST_BYTES + 1)), w).status == 400


def test_another_principals_job_is_forbidden_to_read():
    rule, w = ForeignJobs(), world()
    rule.mark_foreign("theirs")
    answer = rule.before(request("GET", f"{P}/jobs/theirs"), w)
    assert (answer.status, answer.json["error"]["errors"][0]["reason"]) == (403, "accessDenied")
    assert rule.before(request("GET", f"{P}/jobs/mine"), w) is None
    rule.reset()
    assert rule.before(request("GET", f"{P}/jobs/theirs"), w) is None


def test_requester_pays_buckets_refuse_calls_without_user_project():
    rule, w = RequesterPays(), world()
    rule.mark("billed")
    refused = rule.check(StorageCall.parse("GET", "/storage/v1/b/billed/o?prefix=a"), w)
    assert (refused.status, refused.json["error"]["errors"][0]["reason"]) == (400, "required")
    assert rule.check(StorageCall.parse("GET", "/storage/v1/b/billed/o?prefix=a&userProject=p"), w) is None
    assert rule.check(StorageCall.parse("GET", "/storage/v1/b/free/o"), w) is None
    created = request("POST", "/storage/v1/b?project=p", {"name": "new", "billing": {"requesterPays": True}})
    rule.after(created, Reply(200, {}, b"{}"), w)
    assert rule.check(StorageCall.parse("DELETE", "/storage/v1/b/new/o/x"), w) is not None


def test_storage_calls_name_bucket_object_and_rewrite_destination():
    call = StorageCall.parse("POST", "/storage/v1/b/src/o/a%2Fb.csv/rewriteTo/b/dst/o/arch%2Fb.csv?ifSourceGenerationMatch=3")
    assert (call.bucket, call.name, call.destination, call.param("ifSourceGenerationMatch")) == \
        ("src", "a/b.csv", ("dst", "arch/b.csv"), "3")
    upload = StorageCall.parse("POST", "/upload/storage/v1/b/bk/o?uploadType=multipart&name=x%2Fy&ifGenerationMatch=0")
    assert (upload.bucket, upload.name, upload.is_upload) == ("bk", "x/y", True)


def test_a_batch_of_more_than_one_hundred_calls_is_refused():
    def batch(n: int) -> Exchange:
        body = "".join(f"--B\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/b/o/o{i} HTTP/1.1\r\n\r\n"
                       for i in range(n)) + "--B--"
        return request("POST", "/batch/storage/v1", body.encode(), **{"Content-Type": "multipart/mixed; boundary=B"})
    rule, w = BatchSize(), world()
    assert rule.before(batch(100), w) is None
    assert rule.before(batch(101), w).status == 400


def test_chaos_is_seeded_and_counts_what_it_injected():
    def drawn(seed: int) -> list:
        chaos = Chaos()
        chaos.start(seed=seed, rate=0.3)
        return [(k.value if (d := chaos.draw(request("GET", f"{P}/datasets/d"))) and (k := d[0]) else None)
                for _ in range(200)], dict(chaos.injected)
    first, counts = drawn(7)
    assert first == drawn(7)[0] and first != drawn(8)[0]
    assert 30 < sum(counts.values()) < 90 and sum(counts.values()) == sum(1 for k in first if k)
    assert set(counts) <= {ChaosKind.BIGQUERY_RATE_LIMITED.value, ChaosKind.BIGQUERY_BACKEND_ERROR.value,
                           ChaosKind.BIGQUERY_UNAVAILABLE.value, ChaosKind.CONNECTION_RESET.value}


def test_chaos_answers_a_jobs_get_right_after_the_insert_with_404_once():
    chaos = Chaos()
    chaos.start(seed=1, rate=1.0, kinds=frozenset({ChaosKind.JOB_NOT_FOUND_AFTER_INSERT}))
    insert = query_job("SELECT 1", "fresh")
    assert chaos.draw(insert) is None
    chaos.observe(insert, Reply(200, {}, b"{}"))
    kind, answer = chaos.draw(request("GET", f"{P}/jobs/fresh"))
    assert kind is ChaosKind.JOB_NOT_FOUND_AFTER_INSERT and answer.status == 404
    assert chaos.draw(request("GET", f"{P}/jobs/fresh")) is None
