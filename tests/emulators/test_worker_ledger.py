"""The ledger's own contract, against the BigQuery emulator: what a write keeps, and an upgrade in place."""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import bigquery

from tests.emulators.worker_helpers import day, ledger_rows, make_spec
from worker.core.records import LedgerEntry, LoadedObject, PendingKey
from worker.ledger import LEDGER_SCHEMA, Ledger


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
    import worker.ledger.entries

    monkeypatch.setattr(worker.ledger.entries, "LEDGER_CHUNK", 2)
    ledger = ledger_for(bq_client, unique_name)
    write(ledger, "a", "b", "c", "e", "f")
    ledger.seal([day(5)], sealed_at=datetime.now(UTC))
    ledger.mark_deleted([LoadedObject(interval_start=day(5), name="a", generation=1, size=10)], deleted_at=datetime.now(UTC))

    write(ledger, "b", "d", "e")

    rows = {r["object_name"]: r for r in ledger_rows(bq_client, ledger._spec)}
    assert set(rows) == {"a", "b", "d", "e"}
    assert all(r["sealed_at"] is not None for r in rows.values())
    assert {r["interval_rows"] for r in rows.values()} == {3}


def test_new_ledgers_are_partitioned_by_interval_and_clustered_by_asset(bq_client, unique_name):
    ledger = ledger_for(bq_client, unique_name)
    table = bq_client.get_table(ledger.table_id)
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "interval_start")
    assert table.clustering_fields == ["asset"]


def test_migrate_an_unpartitioned_ledger_keeps_every_row(bq_client, unique_name, tmp_path, capsys):
    """Issue 9.2: a ledger written unpartitioned by an earlier release is moved into a partitioned one by
    ``python -m worker migrate-ledger``; the old table stays as a backup; a recently written ledger is refused."""
    from tests.emulators.worker_helpers import write_spec
    from worker.__main__ import main

    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    bq_client.create_table(bigquery.Table(spec.ledger_table_id, schema=[f for f in LEDGER_SCHEMA if f.name != "sealed_at"]))
    table = f"`{spec.ledger_table_id.replace('.', '`.`')}`"
    bq_client.query(
        f"INSERT INTO {table} (asset, interval_start, object_name, generation, size_bytes, interval_rows, loaded_at, deleted_at) "
        f"VALUES ('{spec.name}', TIMESTAMP '2024-01-05', 'x', 1, 10, 3, CURRENT_TIMESTAMP(), NULL), "
        f"('other/asset', TIMESTAMP '2024-01-06', 'y', 2, 10, 4, TIMESTAMP '2024-01-07', TIMESTAMP '2024-02-01')"
    ).result()
    before = sorted((r["asset"], r["object_name"]) for r in bq_client.query(f"SELECT * FROM {table}").result())
    path = write_spec(tmp_path, spec)

    assert main(["migrate-ledger", "--spec", str(path)]) == 1
    assert "less than 10 minutes ago" in capsys.readouterr().err
    assert main(["migrate-ledger", "--spec", str(path), "--force"]) == 0
    result = __import__("json").loads(capsys.readouterr().out)

    assert result["migrated"] and result["rows"] == 2
    migrated = bq_client.get_table(spec.ledger_table_id)
    assert migrated.time_partitioning.field == "interval_start" and migrated.clustering_fields == ["asset"]
    after = sorted((r["asset"], r["object_name"]) for r in bq_client.query(f"SELECT * FROM {table}").result())
    assert after == before, "every asset's rows moved"
    backup = f"`{result['backup'].replace('.', '`.`')}`"
    assert len(list(bq_client.query(f"SELECT * FROM {backup}").result())) == 2
    record = Ledger(bq_client, spec).recorded_intervals(start=day(1), end=day(20))
    assert set(record) == {day(5)} and not record[day(5)].sealed
    assert main(["migrate-ledger", "--spec", str(path)]) == 0
    assert __import__("json").loads(capsys.readouterr().out)["migrated"] is False, "already partitioned"


def test_an_old_pending_table_gains_the_skipped_column_and_keeps_skip_marks(bq_client, unique_name):
    """Pending loads written before on_bad_file existed: ensure() adds `skipped`; a skipped object read back
    from a pending load is marked skipped (a recovery never records it as loaded)."""
    from worker.core.records import SKIPPED_JOB_ID
    from worker.ledger import PENDING_SCHEMA

    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    bq_client.create_table(bigquery.Table(spec.pending_table_id, schema=[f for f in PENDING_SCHEMA if f.name != "skipped"]))
    ledger = Ledger(bq_client, spec)
    ledger.ensure()
    entries = [entry("good"), LedgerEntry(name="bad", generation=1, size=10, job_id=SKIPPED_JOB_ID)]
    key = PendingKey(copy_job_base="copy_base", staging_table_id="staging", append=False)
    ledger.pending_loads.write(interval_start=day(5), key=key, entries=entries, created_at=datetime.now(UTC))
    read = {e.name: e.job_id for e in ledger.pending_loads.read(start=day(1), end=day(20))[day(5)][key]}
    assert read == {"good": "copy_base", "bad": SKIPPED_JOB_ID}


def test_a_rewrite_of_the_same_generation_takes_its_new_job_id(bq_client, unique_name):
    """A generation loaded by one load and skipped by a reload (or the reverse) must read as the latest load
    says: a stale 'loaded' mark on a skipped object would let retention delete it."""
    from worker.core.records import SKIPPED_JOB_ID

    ledger = ledger_for(bq_client, unique_name)
    write(ledger, "a", "b")
    ledger.record_interval(interval_start=day(5), entries=[entry("a"), LedgerEntry(name="b", generation=1, size=10,
                                                                                    job_id=SKIPPED_JOB_ID)],
                           interval_rows=1, raw_table="raw", loaded_at=datetime.now(UTC), digest="d2")
    assert {r["object_name"]: r["job_id"] for r in ledger_rows(bq_client, ledger._spec)} == {"a": "job", "b": SKIPPED_JOB_ID}
    write(ledger, "a", "b")  # loaded again: no longer skipped
    assert {r["object_name"]: r["job_id"] for r in ledger_rows(bq_client, ledger._spec)} == {"a": "job", "b": "job"}


def test_any_object_name_and_exact_figures_round_trip_through_the_ledger_statements(bq_client, unique_name):
    """Entries travel as one JSON string (PARSE_JSON + JSON_VALUE in SQL): quotes, backslashes, control
    characters, non-ASCII and 16-digit generations come back exactly, in the ledger and the pending record."""
    ledger = ledger_for(bq_client, unique_name)
    odd = ['dir/"quoted" name.csv', "back\\slash\\path.csv", "tab\tand\u0001control.csv", "ünïcödé/☃/😀.csv",
           "$[0] and 'single' quotes.csv"]
    entries = [LedgerEntry(name=n, generation=1_796_175_140_198_956 + i, size=5 * 2**40 + i, job_id=f"job_{i}")
               for i, n in enumerate(odd)]
    ledger.record_interval(interval_start=day(5), entries=entries, interval_rows=1, raw_table="raw",
                           loaded_at=datetime.now(UTC), digest="d")
    key = PendingKey(copy_job_base="k", staging_table_id="s", append=False)
    ledger.pending_loads.write(interval_start=day(5), key=key, entries=entries, created_at=datetime.now(UTC))

    rows = {r["object_name"]: r for r in ledger_rows(bq_client, ledger._spec)}
    assert set(rows) == set(odd)
    for e in entries:
        assert (rows[e.name]["generation"], rows[e.name]["size_bytes"], rows[e.name]["job_id"]) == (e.generation, e.size, e.job_id)
    pending = ledger.pending_loads.read(start=day(5), end=day(6))[day(5)][key]
    assert sorted((p.name, p.generation, p.size) for p in pending) == sorted((e.name, e.generation, e.size) for e in entries)
