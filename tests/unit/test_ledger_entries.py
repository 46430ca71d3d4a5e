"""The ledger's ``@entries`` parameter: one JSON string per statement, bounded by count and by bytes."""

from __future__ import annotations

import json

import worker.ledger as ledger_module
from worker.ledger import LEDGER_CHUNK, LEDGER_CHUNK_BYTES, LedgerEntry, entry_chunks


def entries(count: int, *, name_length: int = 40) -> list[LedgerEntry]:
    return [LedgerEntry(name=f"drops/2024-01-05/{i:08d}".ljust(name_length, "x"), generation=1_796_175_140_198_956 + i,
                        size=i, job_id="gcs_import_job") for i in range(count)]


def decoded(chunks: list[str]) -> list[list]:
    return [row for chunk in chunks for row in json.loads(chunk)]


def test_entries_round_trip_with_exact_generations_and_any_name():
    odd = LedgerEntry(name='dir/"quoted" \\ é ☃.csv', generation=2**62 + 1, size=0, job_id="skipped")
    [chunk] = entry_chunks([*entries(3), odd])
    rows = json.loads(chunk)
    assert rows[-1] == ['dir/"quoted" \\ é ☃.csv', str(2**62 + 1), 0, "skipped"]  # the generation as a string: exact
    assert [int(r[1]) for r in rows[:3]] == [e.generation for e in entries(3)]


def test_no_entries_is_one_empty_chunk():
    assert entry_chunks([]) == ["[]"]


def test_chunks_hold_at_most_LEDGER_CHUNK_entries():
    chunks = entry_chunks(entries(LEDGER_CHUNK * 2 + 1))
    assert [len(json.loads(c)) for c in chunks] == [LEDGER_CHUNK, LEDGER_CHUNK, 1]
    assert len(decoded(chunks)) == LEDGER_CHUNK * 2 + 1


def test_long_names_are_cut_by_bytes_so_a_request_stays_under_10_mb():
    # GCS names may have 1,024 bytes: 10,000 of them would be ~10.5 MB in one statement
    many = entries(10_000, name_length=1024)
    chunks = entry_chunks(many)
    assert len(chunks) > 1
    assert all(len(c.encode()) <= LEDGER_CHUNK_BYTES for c in chunks)
    assert [r[0] for r in decoded(chunks)] == [e.name for e in many]


def test_the_byte_bound_counts_utf8_bytes(monkeypatch):
    monkeypatch.setattr(ledger_module, "LEDGER_CHUNK_BYTES", 200)
    wide = [LedgerEntry(name="é" * 30, generation=1, size=1, job_id="j") for _ in range(6)]
    chunks = entry_chunks(wide)
    assert all(len(c.encode()) <= 200 for c in chunks), [len(c.encode()) for c in chunks]
    assert len(decoded(chunks)) == 6
