"""The ledger: what each run loaded and what retention deleted, durably, in BigQuery.

- :mod:`worker.ledger.records`: the ledger table (:class:`Ledger`: ensure, read, record, seal, mark deleted);
- :mod:`worker.ledger.pending`: the pending-load table beside it (:class:`PendingLoads`, keyed by
  :class:`~worker.core.records.PendingKey`; reached as ``Ledger.pending_loads``);
- :mod:`worker.ledger.migration`: moving a ledger an earlier release wrote unpartitioned;
- :mod:`worker.ledger.archived`: archive copies (URI and generation) of objects retention archived;
- :mod:`worker.ledger.entries`: how statements carry objects (bounded ``@entries`` chunks; its
  ``LEDGER_CHUNK`` and ``LEDGER_CHUNK_BYTES`` are read there at each call).
"""

from worker.ledger.entries import asset_id, bounded_chunks, entry_chunks, wire_bytes
from worker.ledger.migration import MAX_PARTITIONS_PER_JOB, day_chunks, migrate_to_partitioned
from worker.ledger.pending import PENDING_SCHEMA, PendingLoads
from worker.ledger.records import LEDGER_SCHEMA, Ledger, new_ledger_table

__all__ = [
    "LEDGER_SCHEMA", "MAX_PARTITIONS_PER_JOB", "PENDING_SCHEMA", "Ledger",
    "PendingLoads", "asset_id", "bounded_chunks", "day_chunks", "entry_chunks", "migrate_to_partitioned",
    "new_ledger_table", "wire_bytes",
]
