"""Load batches and the load job's request: object names no URI can name, the 10 MB request limit, and the
Avro logical-types setting (spec and load config, no services)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.cloud import bigquery

from localdev.conformance.exchange import Exchange
from localdev.conformance.rules.bigquery_request_size import MAX_REQUEST_BYTES, RequestSize
from localdev.conformance.world import Clock, Upstream, World
from tests.unit.test_spec import BASE
from worker.core.formats import avro_logical_types
from worker.core.records import ObjectInfo
from worker.core.spec import ImportSpec, SpecError
from worker.loading import load_job_config
from worker.planning import (
    MAX_URI_BYTES_PER_JOB,
    MAX_URIS_PER_JOB,
    batch_uris,
    plan_interval_load,
    unloadable_reason,
    uri_request_bytes,
)

START = datetime(2024, 1, 5, tzinfo=UTC)
SPEC = ImportSpec(**{**BASE, "format": "CSV", "schema": [{"name": "a", "type": "STRING"}]})


def objects(names):
    return [ObjectInfo(name=n, generation=1, size=1) for n in names]


def insert_body(spec: ImportSpec, uris) -> bytes:
    """The jobs.insert body the client sends for one batch (as google-cloud-bigquery serialises it)."""
    reference = bigquery.job.base._JobReference("gcs_import_x_load0_a0", "p", "US")
    job = bigquery.LoadJob(reference, list(uris), bigquery.TableReference.from_string("p.d.t"),
                           client=None, job_config=load_job_config(spec, first_batch=True))
    return json.dumps(job.to_api_repr()).encode()


def accepted(body: bytes) -> bool:
    exchange = Exchange.parse(method="POST", target="/bigquery/v2/projects/p/jobs", headers={}, body=body)
    return RequestSize().before(exchange, World(clock=Clock(), upstream=Upstream("http://x", "http://x"))) is None


@pytest.mark.parametrize("char", ["n", "é", "\U0001f600"])
def test_ten_thousand_names_of_1024_bytes_load_in_requests_under_10_mb(char):
    per_name = 1024 - len("drops/2024-01-05/00000/.csv")
    names = [f"drops/2024-01-05/{i:05d}/{char * (per_name // len(char.encode()))}.csv" for i in range(10_000)]
    assert all(len(n.encode()) <= 1024 for n in names)
    plan = plan_interval_load(SPEC, interval_start=START, objects=objects(names))

    assert sum(len(b) for b in plan.batches) == 10_000 and len(plan.batches) >= 2
    assert all(len(b) <= MAX_URIS_PER_JOB and sum(map(uri_request_bytes, b)) <= MAX_URI_BYTES_PER_JOB for b in plan.batches)
    for batch in plan.batches:
        body = insert_body(SPEC, batch)
        assert len(body) < MAX_REQUEST_BYTES and accepted(body)
    unbounded = batch_uris(SPEC.bucket_name, objects(names), max_bytes=10**9)
    assert len(unbounded) == 1 and not accepted(insert_body(SPEC, unbounded[0])), "one batch would be refused"


def test_short_names_still_batch_by_10000_uris_and_job_ids_follow_the_batches():
    plan = plan_interval_load(SPEC, interval_start=START, objects=objects(f"d/{i:05d}.csv" for i in range(25_000)))
    assert [len(b) for b in plan.batches] == [10_000, 10_000, 5_000]
    by_name = plan.job_ids_by_name(["load0", "load1", "load2", "copy"])
    assert (by_name["d/00000.csv"], by_name["d/09999.csv"], by_name["d/10000.csv"], by_name["d/24999.csv"]) == (
        "load0", "load0", "load1", "load2")
    assert set(plan.job_ids_by_name(["copy"]).values()) == {"copy"}


def test_names_with_a_wildcard_or_consecutive_slashes_are_in_no_batch():
    names = ["d/a.csv", "d/a*.csv", "d/x//y.csv", "/lead.csv", "d/[x]?.csv"]
    plan = plan_interval_load(SPEC, interval_start=START, objects=objects(names))

    assert plan.unloadable == ("/lead.csv", "d/a*.csv", "d/x//y.csv")
    assert [u.split("/", 3)[3] for b in plan.batches for u in b] == ["d/[x]?.csv", "d/a.csv"]
    assert "wildcard" in unloadable_reason("a*.csv") and "slashes" in unloadable_reason("x//y")
    assert unloadable_reason("d/[x]?.csv") is None, "BigQuery gives '?' and '[' no meaning in a URI"
    assert len(plan.objects) == 5, "the ledger still records every object (the unloadable ones as skipped)"


def test_job_ids_and_digests_of_ordinary_names_are_unchanged():
    plan = plan_interval_load(SPEC, interval_start=START, objects=objects(["d/a.csv", "d/b.csv"]))
    assert plan.batches == (("gs://oso-dataset-transfer-bucket/d/a.csv", "gs://oso-dataset-transfer-bucket/d/b.csv"),)
    assert SPEC.fingerprint() == ImportSpec(**{**BASE, "format": "CSV", "schema": [{"name": "a", "type": "STRING"}],
                                               "load_options": {}}).fingerprint()


# -- Avro logical types ----------------------------------------------------------------------------------


def _avro(**overrides) -> ImportSpec:
    return ImportSpec(**{**BASE, "format": "AVRO", **overrides})


def _flag(spec: ImportSpec):
    return load_job_config(spec, first_batch=True).to_api_repr()["load"].get("useAvroLogicalTypes")


def test_new_avro_imports_load_logical_types_and_the_option_turns_them_off():
    assert _flag(_avro()) is True
    assert _flag(_avro(load_options={"use_avro_logical_types": False})) is False
    assert _flag(_avro(load_options={"use_avro_logical_types": True})) is True
    assert _flag(ImportSpec(**BASE)) is None, "not sent for Parquet"


def test_an_explicit_schema_decides_when_the_option_is_unset():
    temporal = [{"name": "ts", "type": "TIMESTAMP"}, {"name": "n", "type": "INT64"}]
    raw = [{"name": "ts", "type": "INT64"}, {"name": "n", "type": "INT64"}]
    assert avro_logical_types(_avro(schema=temporal)) is True
    assert avro_logical_types(_avro(schema=raw)) is False, "written for the raw integers an earlier release loaded"
    assert avro_logical_types(_avro(schema=raw, load_options={"use_avro_logical_types": True})) is True


def test_the_option_enters_the_digest_only_when_set():
    assert _avro().fingerprint() == _avro(load_options={"use_avro_logical_types": None}).fingerprint()
    assert _avro().fingerprint() != _avro(load_options={"use_avro_logical_types": False}).fingerprint()
    with pytest.raises(SpecError, match=r"load_options\.use_avro_logical_types"):
        _avro(load_options={"use_avro_logical_types": "yes"})
    with pytest.raises(SpecError, match="applies to AVRO"):
        ImportSpec(**{**BASE, "load_options": {"use_avro_logical_types": True}})
