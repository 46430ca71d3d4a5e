"""How the ledger's statements carry objects: one ``@entries`` STRING parameter per statement, in bounded chunks.

Pure encoding (no I/O), shared by the ledger's records (:mod:`worker.ledger.records`) and its pending loads
(:mod:`worker.ledger.pending`). A statement of one interval carries ``[name, generation, size, job_id]``
entries (:func:`entry_chunks`); a statement of several intervals (one round of a run) carries each entry
with its interval's start and, for pending loads, its pending key (:func:`batch_chunks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


#: Partitions one query or load job may modify: "Each job operation (query or load) can affect up to 4,000
#: partitions. BigQuery rejects any query or load job that attempts to modify more than 4,000 partitions."
#: (https://cloud.google.com/bigquery/quotas#partitioned_tables). The ledger is partitioned by day.
MAX_PARTITIONS_PER_JOB = 4000

#: The rows of a batch's ``@entries``: ``[name, generation, size, job_id, interval start, pending key]``, the
#: interval start as a string of microseconds since the epoch (exact, like the generation), the pending key
#: (:meth:`~worker.core.records.PendingKey.stored`) only in pending loads' statements (NULL otherwise).
BATCH_ENTRIES_SQL = (
    "(SELECT JSON_VALUE(j, '$[0]') AS object_name, CAST(JSON_VALUE(j, '$[1]') AS INT64) AS generation, "
    "CAST(JSON_VALUE(j, '$[2]') AS INT64) AS size_bytes, JSON_VALUE(j, '$[3]') AS job_id, "
    "TIMESTAMP_MICROS(CAST(JSON_VALUE(j, '$[4]') AS INT64)) AS interval_start, JSON_VALUE(j, '$[5]') AS pending_key "
    "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@entries))) AS j)"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> str:
    """``moment`` as exact microseconds since the epoch, as a string (a naive ``moment`` is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str((moment - _EPOCH) // timedelta(microseconds=1))


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


def _compact(value: list) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class IntervalEntries:
    """One interval's part of a batch statement: its start, its objects, and (pending loads) its pending key."""

    interval_start: datetime
    entries: Sequence[LedgerEntry]
    pending_key: str | None = None
    #: Bytes the statement spends on the interval besides its entries (e.g. its figures in another parameter).
    extra_bytes: int = 0


@dataclass(frozen=True)
class BatchChunk:
    """One statement's share of a batch: the positions of its intervals in the batch, and its ``@entries``."""

    positions: tuple[int, ...]
    entries: str


def batch_chunks(intervals: Sequence[IntervalEntries], *, whole: bool,
                 partition: Callable[[datetime], Hashable] = lambda start: start.date(),
                 ) -> tuple[list[BatchChunk], list[int]]:
    """``intervals`` packed, in order, into as few statements as BigQuery's limits allow (pure):
    ``(chunks, positions of the intervals too large for one chunk)``.

    Each chunk holds at most :data:`LEDGER_CHUNK` entries and :data:`LEDGER_CHUNK_BYTES` as sent (the entries'
    :func:`wire_bytes`, brackets and commas, plus each interval's ``extra_bytes``), of intervals in at most
    :data:`MAX_PARTITIONS_PER_JOB` distinct ``partition`` values (days, by default). With ``whole`` an
    interval's entries never span two chunks: one that does not fit an empty chunk is left out and its
    position returned (its caller writes it alone, in chunks); without, an interval's entries are cut where
    a chunk is full. With ``whole`` an interval without entries still has a place in a chunk (its
    statement may remove rows); without, it has none (nothing to write).
    """
    chunks: list[_Packing] = []
    oversized: list[int] = []
    for position, item in enumerate(intervals):
        start = micros(item.interval_start)
        key = [item.pending_key] if item.pending_key is not None else []
        texts = [_compact([e.name, str(e.generation), e.size, e.job_id, start, *key]) for e in item.entries]
        pieces = [[text] for text in texts] if not whole else [texts]
        if whole and (len(texts) > LEDGER_CHUNK
                      or 2 + item.extra_bytes + sum(wire_bytes(t) + 1 for t in texts) > LEDGER_CHUNK_BYTES):
            oversized.append(position)
            continue
        for piece in pieces:  # whole: one piece, even without entries
            if not chunks or not chunks[-1].takes(position, piece, item, partition(item.interval_start)):
                chunks.append(_Packing())
                chunks[-1].takes(position, piece, item, partition(item.interval_start))
    return [BatchChunk(positions=tuple(c.positions), entries="[" + ",".join(c.texts) + "]") for c in chunks], oversized


class _Packing:
    """One chunk as :func:`batch_chunks` fills it."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.texts: list[str] = []
        self.size = 2  # the brackets
        self.partitions: set[Hashable] = set()

    def takes(self, position: int, piece: list[str], item: IntervalEntries, part: Hashable) -> bool:
        """Add ``piece`` (entries of the interval at ``position``) if it fits (always, into an empty chunk)."""
        new = not self.positions or self.positions[-1] != position
        length = sum(wire_bytes(t) + 1 for t in piece) + (item.extra_bytes if new else 0)
        if self.positions and (len(self.texts) + len(piece) > LEDGER_CHUNK or self.size + length > LEDGER_CHUNK_BYTES
                               or (part not in self.partitions and len(self.partitions) >= MAX_PARTITIONS_PER_JOB)):
            return False
        if new:
            self.positions.append(position)
        self.texts += piece
        self.size += length
        self.partitions.add(part)
        return True


def describe_intervals(starts: Iterable[datetime]) -> str:
    """Intervals for an error message: ``interval X``, or ``intervals X..Y (n)``."""
    ordered = sorted(set(starts))
    if len(ordered) == 1:
        return f"interval {ordered[0].isoformat()}"
    return f"intervals {ordered[0].isoformat()}..{ordered[-1].isoformat()} ({len(ordered)})"


def entries_param(chunk: str) -> bigquery.ScalarQueryParameter:
    """The ``@entries`` parameter of one chunk (:func:`entry_chunks`)."""
    return bigquery.ScalarQueryParameter("entries", "STRING", chunk)
