"""The ledger's ``@entries`` parameter: one JSON string per statement, bounded by count and by bytes."""

from __future__ import annotations

import json

import pytest

import worker.ledger.entries as ledger_module
from worker.core.records import LedgerEntry
from worker.ledger.entries import LEDGER_CHUNK, LEDGER_CHUNK_BYTES, entry_chunks, wire_bytes


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


def request_body_bytes(chunk: str) -> int:
    """What the chunk costs in the jobs.insert body the client sends (its own JSON encoding)."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("entries", "STRING", chunk)])
    return len(json.dumps(config.to_api_repr()))


@pytest.mark.parametrize("character", ["x", "é", "☃", "😀", '"', "\\"])
def test_long_names_are_cut_so_the_request_stays_under_10_mb(character):
    # GCS names may have 1,024 bytes; the client escapes non-ASCII (ensure_ascii), quotes and backslashes
    name_length = 1024 // len(character.encode())
    many = [LedgerEntry(name=f"{i:08d}" + character * (name_length - 8), generation=1, size=1, job_id="j")
            for i in range(10_000)]
    chunks = entry_chunks(many)
    assert max(request_body_bytes(c) for c in chunks) < 10 * 1024 * 1024 / 2
    assert all(wire_bytes(c) <= LEDGER_CHUNK_BYTES for c in chunks)
    assert [r[0] for r in decoded(chunks)] == [e.name for e in many]


def test_the_byte_bound_counts_the_bytes_as_sent(monkeypatch):
    monkeypatch.setattr(ledger_module, "LEDGER_CHUNK_BYTES", 200)
    wide = [LedgerEntry(name="é" * 20, generation=1, size=1, job_id="j") for _ in range(6)]
    chunks = entry_chunks(wide)
    assert len(chunks) > 1
    assert all(wire_bytes(c) <= 200 for c in chunks), [wire_bytes(c) for c in chunks]
    assert len(decoded(chunks)) == 6
