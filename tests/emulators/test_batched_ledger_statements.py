"""One round of intervals in as few ledger statements as BigQuery's limits allow (issue 19): the batch methods
(``PendingLoads.write_many``/``drop_many``, ``Ledger.record_intervals``) end exactly where one call per interval
ends, in one DML statement per chunk, counted through the conformance proxy."""

from __future__ import annotations

from datetime import UTC, datetime

import worker.ledger.entries as entries_module
from tests.emulators.worker_helpers import day, ledger_rows, make_spec
from worker.core.records import IntervalRecord, LedgerEntry, LoadedObject, PendingKey, PendingWrite
from worker.ledger import Ledger
from worker.ledger.entries import IntervalEntries, batch_chunks

LOADED_AT = datetime(2024, 2, 1, 12, 30, 15, 123456, tzinfo=UTC)


def entry(name: str, generation: int = 1, job_id: str = "job") -> LedgerEntry:
    return LedgerEntry(name=name, generation=generation, size=10, job_id=job_id)


def ledger_for(bq_client, name: str) -> Ledger:
    spec = make_spec("some-bucket", name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    ledger = Ledger(bq_client, spec)
    ledger.ensure()
    return ledger


def dml_statements(log) -> int:
    """Query jobs inserted through the proxy (every query job of the block under test is a DML statement)."""
    return sum(1 for r in log if r.method == "POST" and r.target.split("?")[0].endswith("/jobs"))


def record(start: datetime, names: list[str], *, rows: int = 7, job_id: str = "job2") -> IntervalRecord:
    return IntervalRecord(interval_start=start, entries=tuple(entry(n, job_id=job_id) for n in names),
                          interval_rows=rows, raw_table=f"raw_{start:%d}", loaded_at=LOADED_AT, digest=f"d{start:%d}")


def earlier_state(ledger: Ledger) -> None:
    """Day 5: a (deleted by retention), b, c, sealed; day 6: x, y; day 7 nothing."""
    for start, names in [(day(5), ["a", "b", "c"]), (day(6), ["x", "y"])]:
        ledger.record_interval(interval_start=start, entries=[entry(n) for n in names], interval_rows=len(names),
                               raw_table="raw", loaded_at=datetime(2024, 1, 20, tzinfo=UTC), digest="old")
    ledger.seal([day(5)], sealed_at=datetime(2024, 1, 21, tzinfo=UTC))
    ledger.mark_deleted([LoadedObject(interval_start=day(5), name="a", generation=1, size=10)],
                        deleted_at=datetime(2024, 1, 22, tzinfo=UTC))


def comparable(rows: list[dict]) -> list[tuple]:
    return sorted((r["interval_start"], r["object_name"], r["generation"], r["size_bytes"], r["job_id"],
                   r["interval_rows"], r["raw_table"], r["loaded_at"], r["deleted_at"], r["digest"], r["sealed_at"])
                  for r in rows)


ROUND = [record(day(5), ["b", "d"], rows=2), record(day(6), []), record(day(7), ["p", "q"], rows=9)]


def test_record_intervals_ends_as_one_record_interval_each_in_one_merge(conformance, bq_client, unique_name):
    batched, single = ledger_for(bq_client, f"{unique_name}b"), ledger_for(bq_client, f"{unique_name}s")
    for ledger in (batched, single):
        earlier_state(ledger)
    for r in ROUND:
        single.record_interval(interval_start=r.interval_start, entries=r.entries, interval_rows=r.interval_rows,
                               raw_table=r.raw_table, loaded_at=r.loaded_at, digest=r.digest)
    with conformance.recording() as log:
        batched.record_intervals(ROUND)
    assert dml_statements(log) == 1, "one MERGE for the round"

    rows = ledger_rows(bq_client, batched.spec)
    assert comparable(rows) == comparable(ledger_rows(bq_client, single.spec))
    by_name = {r["object_name"]: r for r in rows}
    assert set(by_name) == {"a", "b", "d", "p", "q"}, "c and day 6's rows removed; the deleted object's row kept"
    assert by_name["a"]["deleted_at"] is not None and by_name["a"]["interval_rows"] == 2, "kept, with the new figures"
    assert by_name["a"]["job_id"] == "job", "a kept row keeps its job id"
    assert by_name["d"]["sealed_at"] is not None, "a new row inherits its interval's seal"
    assert by_name["p"]["sealed_at"] is None, "another interval's seal is not inherited"
    assert (by_name["p"]["interval_rows"], by_name["p"]["raw_table"], by_name["p"]["digest"]) == (9, "raw_07", "d07")
    assert by_name["b"]["job_id"] == "job2" and by_name["b"]["loaded_at"] == LOADED_AT


def test_record_intervals_splits_by_the_entry_limit_and_writes_a_large_interval_alone(
        conformance, bq_client, unique_name, monkeypatch):
    monkeypatch.setattr(entries_module, "LEDGER_CHUNK", 4)
    batched, single = ledger_for(bq_client, f"{unique_name}b"), ledger_for(bq_client, f"{unique_name}s")
    records = [record(day(1), ["a", "b"]), record(day(2), ["c", "d"]), record(day(3), ["e", "f", "g"]),
               record(day(4), ["h", "i", "j", "k", "l"])]  # day 4: more than one chunk holds
    chunks, oversized = batch_chunks([IntervalEntries(interval_start=r.interval_start, entries=r.entries)
                                      for r in records], whole=True)
    assert [c.positions for c in chunks] == [(0, 1), (2,)] and oversized == [3]
    for r in records:
        single.record_interval(interval_start=r.interval_start, entries=r.entries, interval_rows=r.interval_rows,
                               raw_table=r.raw_table, loaded_at=r.loaded_at, digest=r.digest)
    with conformance.recording() as log:
        batched.record_intervals(records)
    # two batch chunks (one MERGE each); the large interval as record_interval writes it: 2 MERGEs, DELETE, UPDATE
    assert dml_statements(log) == len(chunks) + 4
    assert comparable(ledger_rows(bq_client, batched.spec)) == comparable(ledger_rows(bq_client, single.spec))


def test_a_repeated_interval_ends_as_its_last_record(bq_client, unique_name):
    ledger = ledger_for(bq_client, unique_name)
    ledger.record_intervals([record(day(5), ["a"]), record(day(6), ["x"]), record(day(5), ["b"], rows=3)])
    assert {(r["interval_start"], r["object_name"], r["interval_rows"]) for r in ledger_rows(bq_client, ledger.spec)} \
        == {(day(5), "b", 3), (day(6), "x", 7)}


KEY_A = PendingKey(copy_job_base="copy_a", staging_table_id="staging_a", append=False)
KEY_B = PendingKey(copy_job_base="copy_b_append", staging_table_id="staging_b", append=True)


def pending_state(ledger: Ledger) -> list[tuple]:
    found = ledger.pending_loads.read(start=day(1), end=day(28))
    return sorted((start, key, e.name, e.generation, e.size, e.job_id)
                  for start, keys in found.items() for key, entries in keys.items() for e in entries)


def count_pending(bq_client, ledger: Ledger) -> int:
    table = f"`{ledger.spec.pending_table_id.replace('.', '`.`')}`"
    return next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM {table}").result()))["n"]


WRITES = [PendingWrite(interval_start=day(5), key=KEY_A, entries=(entry("a"), entry("b", job_id="skipped"))),
          PendingWrite(interval_start=day(5), key=KEY_B, entries=(entry("c"),)),
          PendingWrite(interval_start=day(6, hour=3), key=KEY_A, entries=(entry('odd "name" ☃', 2**60),))]


def test_write_many_writes_what_one_write_each_writes_in_one_idempotent_insert(conformance, bq_client, unique_name):
    batched, single = ledger_for(bq_client, f"{unique_name}b"), ledger_for(bq_client, f"{unique_name}s")
    now = datetime.now(UTC)
    for w in WRITES:
        single.pending_loads.write(interval_start=w.interval_start, key=w.key, entries=w.entries, created_at=now)
    with conformance.recording() as log:
        batched.pending_loads.write_many(WRITES, created_at=now)
    assert dml_statements(log) == 1
    assert pending_state(batched) == pending_state(single)
    assert count_pending(bq_client, batched) == 4

    batched.pending_loads.write_many([*WRITES, WRITES[0]], created_at=now)  # again (and a repeat in one call)
    assert count_pending(bq_client, batched) == 4, "writing the round again inserts nothing twice"
    assert pending_state(batched) == pending_state(single)


def test_write_many_cuts_a_round_into_chunks_by_the_entry_limit(conformance, bq_client, unique_name, monkeypatch):
    monkeypatch.setattr(entries_module, "LEDGER_CHUNK", 2)
    ledger = ledger_for(bq_client, unique_name)
    with conformance.recording() as log:
        ledger.pending_loads.write_many(WRITES, created_at=datetime.now(UTC))
    assert dml_statements(log) == 2, "4 entries, 2 per statement"
    assert count_pending(bq_client, ledger) == 4


def test_drop_many_drops_exactly_the_given_pending_loads_in_one_delete(conformance, bq_client, unique_name):
    ledger = ledger_for(bq_client, unique_name)
    ledger.pending_loads.write_many(WRITES, created_at=datetime.now(UTC))
    with conformance.recording() as log:
        ledger.pending_loads.drop_many([(day(5), KEY_A), (day(6, hour=3), KEY_A), (day(7), KEY_B)])
    assert dml_statements(log) == 1
    assert [(start, key, name) for start, key, name, *_ in pending_state(ledger)] == [(day(5), KEY_B, "c")]
    with conformance.recording() as log:
        ledger.pending_loads.drop_many([])
    assert dml_statements(log) == 0
