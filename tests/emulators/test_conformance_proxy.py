"""The conformance proxy through the official clients: what every emulator test now talks to.

Each test shows one rule answering as Google Cloud does (and that the rule fired, by the proxy's
own count), or that the proxy forwards what it should untouched (resumable uploads, batches).
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from localdev.conformance.exchange import Service
from tests.emulators.worker_helpers import PROJECT_ID, table_rows
from worker.core.gcs import storage_client


def test_a_resumable_upload_goes_through_the_proxy_end_to_end(conformance, bucket):
    data = b"x" * (9 * 1024 * 1024)  # over the client's 8 MiB threshold: a resumable upload session
    with conformance.recording() as log:
        bucket.blob("big.bin").upload_from_string(data)
    assert bucket.blob("big.bin").download_as_bytes() == data
    assert any(r.method == "PUT" and r.target.startswith("/upload/") for r in log), \
        "the session's chunks must come back through the proxy (Location rewritten)"


def test_a_reused_job_id_answers_409(conformance, bq_client, unique_name):
    job_id = f"dup_{unique_name}"
    bq_client.query("SELECT 1", job_id=job_id, job_retry=None).result()
    with pytest.raises(gexc.Conflict, match="Already Exists: Job"):
        bq_client.query("SELECT 2", job_id=job_id, job_retry=None)
    with conformance.disabled("bigquery_duplicate_job_id"):  # the emulator alone accepts the reuse
        bq_client.query("SELECT 3", job_id=job_id, job_retry=None).result()


def test_a_stale_etag_patch_answers_412(bq_client, unique_name):
    bq_client.create_dataset(unique_name)
    table = bq_client.create_table(bigquery.Table(f"{PROJECT_ID}.{unique_name}.t",
                                                  schema=[bigquery.SchemaField("a", "INT64")]))
    bq_client.query(f"INSERT INTO `{PROJECT_ID}.{unique_name}.t` VALUES (1)").result()
    table.labels = {"k": "v"}
    with pytest.raises(gexc.PreconditionFailed):
        bq_client.update_table(table, ["labels"])
    fresh = bq_client.get_table(table)
    fresh.labels = {"k": "v"}
    assert bq_client.update_table(fresh, ["labels"]).labels == {"k": "v"}


def test_a_stale_generation_refuses_a_delete_and_the_batch_call_that_carries_it(conformance, bucket):
    a, b = bucket.blob("a.csv"), bucket.blob("b.csv")
    a.upload_from_string(b"1")
    b.upload_from_string(b"2")
    old = a.generation
    a.upload_from_string(b"1 again")  # a newer generation
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("a.csv").delete(if_generation_match=old)
    client = bucket.client
    with pytest.raises(gexc.PreconditionFailed), client.batch():
        bucket.blob("a.csv").delete(if_generation_match=old)
        bucket.blob("b.csv").delete(if_generation_match=b.generation)
    assert {blob.name for blob in client.list_blobs(bucket.name)} == {"a.csv"}, \
        "the batch's good call is carried out, the stale one refused"
    assert conformance.answered["storage_generation_preconditions"] >= 2


def test_a_rewrite_checks_the_source_generation(bucket):
    blob = bucket.blob("src.csv")
    blob.upload_from_string(b"1")
    old = blob.generation
    blob.upload_from_string(b"2")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("dst.csv").rewrite(bucket.blob("src.csv"), if_source_generation_match=old)


def test_a_requester_pays_bucket_refuses_calls_without_a_user_project(conformance, services, bucket):
    bucket.requester_pays = True
    bucket.patch()
    with pytest.raises(gexc.BadRequest, match="requester pays"):
        list(bucket.client.list_blobs(bucket.name))
    billed = storage_client(project_id=services.project_id).bucket(bucket.name, user_project=services.project_id)
    assert list(billed.list_blobs()) == []


def test_a_wildcard_in_a_load_uri_crosses_slashes(conformance, bq_client, bucket, unique_name):
    # (``//`` collapsing is tested on the request in tests/unit: gcp-storage-emulator keeps ``x//y`` and
    # ``x/y`` in one file on disk, so no load can tell them apart here)
    for name, value in [("w/a/1.csv", "1"), ("w/a/b/2.csv", "2"), ("w/b/3.csv", "3")]:
        bucket.blob(name).upload_from_string(f"v\n{value}\n".encode())
    bq_client.create_dataset(unique_name)
    config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1, schema=[bigquery.SchemaField("v", "INT64")])

    def load(uri: str, table: str) -> list[tuple]:
        table_id = f"{PROJECT_ID}.{unique_name}.{table}"
        bq_client.load_table_from_uri(uri, table_id, job_config=config).result()
        return table_rows(bq_client, table_id)

    assert load(f"gs://{bucket.name}/w/a/*.csv", "wild") == [(1,), (2,)]  # BigQuery: * matches a/b/2.csv too
    assert conformance.answered["bigquery_load_uris"] == 1


def test_recording_tells_which_service_answered(conformance, bq_client, bucket):
    with conformance.recording() as log:
        list(bq_client.list_datasets())
        list(bucket.client.list_blobs(bucket.name))
    calls = [r for r in log if r.service is not Service.AUTH]  # a fresh client refreshes its token first
    assert [r.service for r in calls] == [Service.BIGQUERY, Service.STORAGE]
    assert all(r.answered_by == "emulator" for r in calls)
    assert all(r.answered_by == "conformance:token" for r in log if r.service is Service.AUTH)


def test_tables_get_shows_the_columns_alter_table_added(conformance, bq_client, unique_name):
    bq_client.create_dataset(unique_name)
    table_id = f"{PROJECT_ID}.{unique_name}.t"
    bq_client.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("a", "INT64")]))
    bq_client.query(f"ALTER TABLE `{table_id}` ADD COLUMN b STRING").result()
    assert [(f.name, f.mode) for f in bq_client.get_table(table_id).schema] == [("a", "NULLABLE"), ("b", "NULLABLE")]
    with conformance.disabled("bigquery_schema_after_alter"):  # bqemulator alone keeps the old schema
        assert [f.name for f in bq_client.get_table(table_id).schema] == ["a"]


def test_a_write_truncate_copy_replaces_the_destination_schema(bq_client, unique_name):
    bq_client.create_dataset(unique_name)
    source, destination = f"{PROJECT_ID}.{unique_name}.src", f"{PROJECT_ID}.{unique_name}.dst"
    bq_client.query(f"CREATE TABLE `{source}` AS SELECT 1 AS a, 'x' AS b").result()
    bq_client.query(f"CREATE TABLE `{destination}` AS SELECT 2.5 AS c").result()
    config = bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE")
    bq_client.copy_table(source, destination, job_config=config).result()
    assert [f.name for f in bq_client.get_table(destination).schema] == ["a", "b"]
    assert table_rows(bq_client, destination) == [(1, "x")]
