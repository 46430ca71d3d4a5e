"""How the ledger's statements carry objects: one ``@entries`` STRING parameter per statement, in bounded chunks.

Pure encoding (no I/O), shared by the ledger's records (:mod:`worker.ledger.records`) and its pending loads
(:mod:`worker.ledger.pending`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from google.cloud import bigquery

from worker.core.records import LedgerEntry
from worker.core.spec import ImportSpec

#: Objects per ledger statement at most, and bytes of their encoded entries at most: a statement's
#: request stays far below BigQuery's 10 MB limit (https://cloud.google.com/bigquery/quotas#query_jobs)
#: whatever the names' length (GCS allows 1,024 bytes).
LEDGER_CHUNK = 10_000
LEDGER_CHUNK_BYTES = 4_000_000

#: The rows of ``@entries``: one STRING parameter holding a JSON array of ``[name, generation, size,
#: job_id]``. As ARRAY<STRUCT> query parameters every entry became five parameter objects and five JSON
#: objects in the request (and again in the response that echoes it): about 6 KB of worker memory per
#: object, 60 MB for 10,000 (measured by ``python -m localdev.benchmarks``). As one string an entry
#: costs its JSON text. The generation travels as a string (JSON numbers are doubles). PARSE_JSON makes
#: the elements JSON values, so JSON_VALUE reads each name exactly, whatever characters it holds.
ENTRIES_SQL = (
    "(SELECT JSON_VALUE(j, '$[0]') AS object_name, CAST(JSON_VALUE(j, '$[1]') AS INT64) AS generation, "
    "CAST(JSON_VALUE(j, '$[2]') AS INT64) AS size_bytes, JSON_VALUE(j, '$[3]') AS job_id "
    "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@entries))) AS j)"
)


def asset_id(spec: ImportSpec) -> str:
    """The ledger's key for a spec: its Dagster asset key path, e.g. ``gitcoin/passport_scores``."""
    return "/".join([*(spec.key_prefix or ()), spec.name])


def wire_bytes(text: str) -> int:
    """Bytes ``text`` takes inside a request body: the client JSON-encodes it with ``ensure_ascii``,
    so a non-ASCII character costs 6-12 bytes and a quote or backslash 2 (without the quotes)."""
    return len(json.dumps(text)) - 2


def bounded_chunks(texts: Iterable[str], *, separator_bytes: int) -> list[list[str]]:
    """``texts`` in order, cut into chunks of at most :data:`LEDGER_CHUNK` items whose request bytes
    (each item's :func:`wire_bytes` plus ``separator_bytes``) stay within :data:`LEDGER_CHUNK_BYTES`."""
    chunks: list[list[str]] = [[]]
    size = 0
    for text in texts:
        length = wire_bytes(text) + separator_bytes
        if chunks[-1] and (len(chunks[-1]) >= LEDGER_CHUNK or size + length > LEDGER_CHUNK_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(text)
        size += length
    return chunks


def entry_chunks(entries: Sequence[LedgerEntry]) -> list[str]:
    """``entries`` as ``@entries`` values: JSON arrays of at most LEDGER_CHUNK entries, each within
    LEDGER_CHUNK_BYTES as sent (:func:`wire_bytes`, brackets and commas included).

    Always at least one chunk (``"[]"`` for no entries), so a statement that also removes
    other rows runs once even for an empty interval.
    """
    texts = (json.dumps([e.name, str(e.generation), e.size, e.job_id], ensure_ascii=False, separators=(",", ":"))
             for e in entries)
    # one comma per entry counts the brackets' two bytes too (n entries: n - 1 commas + 2 brackets)
    return ["[" + ",".join(chunk) + "]" for chunk in bounded_chunks(texts, separator_bytes=1)]


def entries_param(chunk: str) -> bigquery.ScalarQueryParameter:
    """The ``@entries`` parameter of one chunk (:func:`entry_chunks`)."""
    return bigquery.ScalarQueryParameter("entries", "STRING", chunk)
