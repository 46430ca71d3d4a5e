"""The ledger's own contract, against the BigQuery emulator: what a write keeps, and an upgrade in place."""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import bigquery

from tests.emulators.worker_helpers import day, ledger_rows, make_spec
from worker.ledger import LEDGER_SCHEMA, Ledger, LedgerEntry
from worker.planning import LoadedObject


def entry(name: str, generation: int = 1) -> LedgerEntry:
    return LedgerEntry(name=name, generation=generation, size=10, job_id="job")


def write(ledger: Ledger, *names: str) -> None:
    ledger.record_interval(interval_start=day(5), entries=[entry(n) for n in names], interval_rows=len(names),
                           raw_table="raw", loaded_at=datetime.now(UTC), digest="d")


def ledger_for(bq_client, unique_name: str) -> Ledger:
    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    ledger = Ledger(bq_client, spec)
    ledger.ensure()
    return ledger


def test_a_write_never_removes_the_row_of_a_deleted_object(bq_client, unique_name):
    ledger = ledger_for(bq_client, unique_name)
    write(ledger, "a", "b", "c")
    ledger.seal([day(5)], sealed_at=datetime.now(UTC))
    ledger.mark_deleted([LoadedObject(interval_start=day(5), name="a", generation=1, size=10)], deleted_at=datetime.now(UTC))

    write(ledger, "b", "d")  # "a" (deleted) and "c" (not deleted) are missing from the entries

    rows = {r["object_name"]: r for r in ledger_rows(bq_client, ledger._spec)}
    assert set(rows) == {"a", "b", "d"}, "the deleted object's row stays; the vanished undeleted one goes"
    assert rows["a"]["deleted_at"] is not None
    assert all(r["sealed_at"] is not None for r in rows.values()), "new rows inherit the interval's seal"
    assert {r["interval_rows"] for r in rows.values()} == {2}, "every row carries the interval's new figures"


def test_an_old_ledger_gains_the_seal_column_in_place_and_keeps_every_row(bq_client, unique_name):
    """A ledger written by the release before seals: ensure() adds the column; rows deleted then count as sealed."""
    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    old_schema = [f for f in LEDGER_SCHEMA if f.name != "sealed_at"]
    bq_client.create_table(bigquery.Table(spec.ledger_table_id, schema=old_schema))
    table = f"`{spec.ledger_table_id.replace('.', '`.`')}`"
    bq_client.query(
        f"INSERT INTO {table} (asset, interval_start, object_name, generation, size_bytes, interval_rows, loaded_at, deleted_at) "
        f"VALUES ('{spec.name}', TIMESTAMP '2024-01-05', 'x', 1, 10, 3, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP()), "
        f"('{spec.name}', TIMESTAMP '2024-01-05', 'y', 1, 10, 3, CURRENT_TIMESTAMP(), NULL)"
    ).result()

    ledger = Ledger(bq_client, spec)
    ledger.ensure()

    # (checked through queries: bqemulator applies the ALTER TABLE but does not update tables.get's schema)
    record = ledger.recorded_intervals(start=day(1), end=day(20))[day(5)]
    assert len(record.objects) == 2 and record.sealed, "a deleted row from before seals the interval"
    ledger.seal([day(5)], sealed_at=datetime.now(UTC))
    assert all(r["sealed_at"] is not None for r in ledger_rows(bq_client, spec))
    ledger.ensure()  # idempotent on an upgraded ledger


def test_chunked_writes_keep_the_same_contract(bq_client, unique_name, monkeypatch):
    """Intervals larger than LEDGER_CHUNK are written in chunks, then untouched rows are removed: same result."""
    import worker.ledger

    monkeypatch.setattr(worker.ledger, "LEDGER_CHUNK", 2)
    ledger = ledger_for(bq_client, unique_name)
    write(ledger, "a", "b", "c", "e", "f")
    ledger.seal([day(5)], sealed_at=datetime.now(UTC))
    ledger.mark_deleted([LoadedObject(interval_start=day(5), name="a", generation=1, size=10)], deleted_at=datetime.now(UTC))

    write(ledger, "b", "d", "e")

    rows = {r["object_name"]: r for r in ledger_rows(bq_client, ledger._spec)}
    assert set(rows) == {"a", "b", "d", "e"}
    assert all(r["sealed_at"] is not None for r in rows.values())
    assert {r["interval_rows"] for r in rows.values()} == {3}
