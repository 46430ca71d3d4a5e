"""The clean table's layout (clustering, partition filter, descriptions) and raw-table expiry: the spec's
rules and the table definitions sent (pure). bqemulator does not store table expiry, so that payload is
checked here; the layout is also checked against the emulator in tests/emulators/test_clean_table_layout.py."""

from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import bigquery

from tests.unit.test_spec import BASE
from worker.core.spec import ImportSpec, SpecError
from worker.publishing import clean_table_definition, layout_changes
from worker.raw_tables import raw_table_expiry

INCREMENTAL = {**BASE, "mode": "Incremental", "schema": [
    {"name": "address", "type": "STRING", "description": "The passport's address"}, {"name": "score", "type": "FLOAT64"}]}
RAW = [bigquery.SchemaField("address", "STRING"), bigquery.SchemaField("score", "FLOAT64")]


def test_the_incremental_clean_table_is_created_with_the_whole_layout():
    spec = ImportSpec(**INCREMENTAL, clustering_fields=["address"], require_partition_filter=True,
                      table_description="Passport scores, daily.")
    body = clean_table_definition(spec, RAW).to_api_repr()
    # partitions never expire, whatever the dataset's default (negative: "no expiration", worker.table_expiry)
    assert body["timePartitioning"] == {"type": "DAY", "field": "_interval_start", "expirationMs": "-1000"}
    assert "expirationTime" not in body  # an insert cannot say "never": read back and patched (expiry_changes)
    assert body["clustering"] == {"fields": ["address"]}
    assert body["requirePartitionFilter"] is True and body["description"] == "Passport scores, daily."
    fields = {f["name"]: f for f in body["schema"]["fields"]}
    assert fields["address"]["description"] == "The passport's address"
    assert list(fields) == ["address", "score", "_interval_start"] and fields["_interval_start"]["type"] == "TIMESTAMP"


def test_an_existing_table_gets_new_clustering_and_description_in_place():
    spec = ImportSpec(**INCREMENTAL, clustering_fields=["score", "address"], table_description="New.")
    table = clean_table_definition(ImportSpec(**INCREMENTAL), RAW)
    fields, refusal = layout_changes(spec, table)
    assert refusal is None and set(fields) == {"clustering_fields", "description"}
    assert table.clustering_fields == ["score", "address"] and table.description == "New."
    assert layout_changes(spec, table) == ([], None)  # applied: nothing more to change


def test_partitioning_cannot_change_and_the_refusal_says_what_to_do():
    table = clean_table_definition(ImportSpec(**INCREMENTAL), RAW)
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="loaded_at")
    fields, refusal = layout_changes(ImportSpec(**INCREMENTAL), table)
    assert fields == [] and "partitioned by loaded_at" in refusal and "cannot change a table's partitioning" in refusal
    assert "destination_table" in refusal


@pytest.mark.parametrize(("overrides", "field"), [
    ({"clustering_fields": ["a", "b", "c", "d", "e"]}, "clustering_fields"),
    ({"clustering_fields": ["a", "a"]}, "clustering_fields"),
    ({"clustering_fields": ["bad-name"]}, "clustering_fields"),
    ({"require_partition_filter": True}, "require_partition_filter"),  # BASE is Overwrite
    ({"require_partition_filter": "yes", "mode": "Incremental"}, "require_partition_filter"),
    ({"raw_table_expiration_days": 30}, "raw_table_expiration_days"),  # Overwrite: raw tables are the only copy
    ({"raw_table_expiration_days": 10, "mode": "Incremental"}, "raw_table_expiration_days"),  # = retention_days
    ({"raw_table_expiration_days": 0, "mode": "Incremental"}, "raw_table_expiration_days"),
    ({"table_description": 5}, "table_description"),
])
def test_layout_fields_are_validated_naming_the_field(overrides, field):
    with pytest.raises(SpecError) as raised:
        ImportSpec(**{**BASE, **overrides})
    assert f"field '{field}'" in str(raised.value)


def test_overwrite_refuses_raw_table_expiry_with_the_reason():
    with pytest.raises(SpecError, match="only copy"):
        ImportSpec(**BASE, raw_table_expiration_days=400)


def test_raw_table_expiry_is_set_from_the_load_time():
    now = datetime(2024, 1, 6, tzinfo=UTC)
    spec = ImportSpec(**{**BASE, "mode": "Incremental"}, raw_table_expiration_days=90)
    assert raw_table_expiry(spec, now=now) == now + timedelta(days=90)
    assert raw_table_expiry(ImportSpec(**BASE), now=now) is None


def test_layout_fields_and_descriptions_do_not_change_the_load_digest():
    plain = ImportSpec(**{**INCREMENTAL, "schema": [{"name": "address", "type": "STRING"}, {"name": "score", "type": "FLOAT64"}]})
    described = ImportSpec(**INCREMENTAL, clustering_fields=["address"], require_partition_filter=True,
                           table_description="x", raw_table_expiration_days=30)
    assert plain.fingerprint() == described.fingerprint()
    assert ImportSpec.from_dict(described.to_dict()) == described
