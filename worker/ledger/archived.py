"""The ledger's record of archived objects (``retention_action: archive``): each loaded object's archive copy,
by URI and generation, written before its original is deleted.

Two NULLable columns of the ledger (:data:`ARCHIVE_FIELDS`; a ledger of an earlier release gets them from
:meth:`worker.ledger.records.Ledger.ensure` in one schema patch). :func:`mark_archived` writes them with one
MERGE per chunk of objects (bounded like every ledger statement: :func:`worker.ledger.entries.bounded_chunks`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.cloud import bigquery

from worker.ledger.entries import asset_id, bounded_chunks
from worker.sql import quote_table

if TYPE_CHECKING:
    from worker.archive_decisions import ArchiveResult
    from worker.ledger.records import Ledger

#: Where an object's verified archive copy is (``gs://bucket/name``) and its generation in the archive bucket.
ARCHIVE_FIELDS = (
    bigquery.SchemaField("archive_uri", "STRING"),
    bigquery.SchemaField("archive_generation", "INT64"),
)

#: The rows of ``@archived``: ``[name, generation, archive uri, archive generation]`` (generations as strings:
#: JSON numbers are doubles).
_ARCHIVED_SQL = (
    "(SELECT JSON_VALUE(j, '$[0]') AS object_name, CAST(JSON_VALUE(j, '$[1]') AS INT64) AS generation, "
    "JSON_VALUE(j, '$[2]') AS archive_uri, CAST(JSON_VALUE(j, '$[3]') AS INT64) AS archive_generation "
    "FROM UNNEST(JSON_QUERY_ARRAY(PARSE_JSON(@archived))) AS j)"
)


def archived_chunks(results: Iterable[ArchiveResult]) -> list[str]:
    """The trusted results as ``@archived`` values (pure): JSON arrays bounded like the ledger's entries.
    Empty when there is nothing to record."""
    texts = [json.dumps([r.obj.name, str(r.obj.generation), r.target_uri, str(r.archive_generation)],
                        ensure_ascii=False, separators=(",", ":"))
             for r in results if r.verdict.trusted]
    if not texts:
        return []
    return ["[" + ",".join(chunk) + "]" for chunk in bounded_chunks(texts, separator_bytes=1)]


def mark_archived(ledger: Ledger, results: Iterable[ArchiveResult]) -> None:
    """Record each trusted result's archive URI and generation on its (name, generation) rows, in every interval
    that records them (as :meth:`~worker.ledger.records.Ledger.mark_deleted` stamps them). Idempotent: a re-run
    that verified the same copy writes the same values."""
    sql = (
        f"MERGE {quote_table(ledger.table_id)} T USING {_ARCHIVED_SQL} S "  # nosec B608 # identifiers via quote_table() (checked, backtick-quoted); values are @query parameters
        "ON T.asset = @asset AND T.object_name = S.object_name AND T.generation = S.generation "
        "WHEN MATCHED THEN UPDATE SET archive_uri = S.archive_uri, archive_generation = S.archive_generation"
    )
    for chunk in archived_chunks(results):
        params = [bigquery.ScalarQueryParameter("asset", "STRING", asset_id(ledger.spec)),
                  bigquery.ScalarQueryParameter("archived", "STRING", chunk)]
        ledger.query(sql, params, action="recording archive copies in the load ledger")
