"""The expiry decision every table the worker creates gets (worker.table_expiry), as pure field changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.cloud import bigquery

from tests.unit.test_spec import BASE
from worker.core.spec import ImportSpec
from worker.ledger import new_ledger_table
from worker.raw_tables import raw_copy_config
from worker.table_expiry import NEVER_PARTITION_MS, expiry_changes

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {k: v for k, v in BASE.items() if k != "mode"}


def test_an_inherited_expiry_is_removed_with_a_null_and_partitions_never_expire():
    table = bigquery.Table("p.d.t")
    table.expires = NOW + timedelta(days=60)
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="s", expiration_ms=60 * 86_400_000)
    assert expiry_changes(table, expires=None) == ["expires", "time_partitioning"]
    body = table.to_api_repr()
    assert body["expirationTime"] is None  # tables.patch {"expirationTime": null}: "removed"
    assert body["timePartitioning"]["expirationMs"] == str(NEVER_PARTITION_MS)
    assert expiry_changes(table, expires=None) == [], "nothing left to patch"


def test_a_decided_expiry_is_kept_within_the_tolerance_and_set_otherwise():
    table = bigquery.Table("p.d.t")
    table.expires = NOW + timedelta(days=45, minutes=5)
    assert expiry_changes(table, expires=NOW + timedelta(days=45)) == []
    assert expiry_changes(table, expires=NOW + timedelta(days=50)) == ["expires"]
    assert table.expires == NOW + timedelta(days=50)


def test_the_ledger_is_created_with_partitions_that_never_expire():
    assert new_ledger_table("p.raw._gcs_import_ledger").time_partitioning.expiration_ms == NEVER_PARTITION_MS


def test_the_raw_copy_sets_the_raw_table_expiry_only_when_the_spec_has_one():
    assert raw_copy_config(ImportSpec(**SPEC, mode="Overwrite"), append=False, now=NOW).destination_expiration_time is None
    spec = ImportSpec(**SPEC, mode="Incremental", raw_table_expiration_days=45)
    config = raw_copy_config(spec, append=True, now=NOW)
    assert config.destination_expiration_time == "2026-02-15T00:00:00Z"
    assert config.write_disposition == "WRITE_APPEND"
