"""How a round of intervals is cut into statements (pure): the ledger's batch ``@entries`` chunks and the
Incremental publish's batch MERGEs, within BigQuery's request, partition and query-length limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from google.cloud import bigquery

import worker.ledger.entries as entries_module
import worker.publishing as publishing
from localdev.conformance.rules.bigquery_partition_filter import has_partition_filter, merge_filter_places
from worker.core.records import LedgerEntry
from worker.core.spec import ImportSpec
from worker.ledger.entries import IntervalEntries, batch_chunks, micros
from worker.publishing import IntervalToPublish, merge_chunks

START = datetime(2024, 1, 1, tzinfo=UTC)


def interval(days: int, count: int, *, hours: int = 0, key: str | None = None) -> IntervalEntries:
    start = START + timedelta(days=days, hours=hours)
    return IntervalEntries(interval_start=start, pending_key=key,
                           entries=[LedgerEntry(name=f"{days}/{i}", generation=i + 1, size=i, job_id="j")
                                    for i in range(count)])


def rows(chunk) -> list[list]:
    return json.loads(chunk.entries)


def test_each_entry_carries_its_interval_start_and_pending_key_exactly():
    [chunk], oversized = batch_chunks([interval(0, 1, hours=5, key="copy|staging"), interval(1, 1)], whole=False)
    assert oversized == [] and chunk.positions == (0, 1)
    first, second = rows(chunk)
    assert first == ["0/0", "1", 0, "j", micros(START + timedelta(hours=5)), "copy|staging"]
    assert second == ["1/0", "1", 0, "j", micros(START + timedelta(days=1))], "no key: a 5-element entry"
    assert int(first[4]) == 1_704_085_200_000_000


def test_whole_intervals_never_span_chunks_and_large_ones_are_left_out(monkeypatch):
    monkeypatch.setattr(entries_module, "LEDGER_CHUNK", 4)
    chunks, oversized = batch_chunks([interval(0, 2), interval(1, 2), interval(2, 3), interval(3, 5), interval(4, 0)],
                                     whole=True)
    assert [c.positions for c in chunks] == [(0, 1), (2, 4)] and oversized == [3]
    assert [len(rows(c)) for c in chunks] == [4, 3], "an interval without entries still has its place"


def test_split_intervals_fill_every_chunk(monkeypatch):
    monkeypatch.setattr(entries_module, "LEDGER_CHUNK", 4)
    chunks, oversized = batch_chunks([interval(0, 3), interval(1, 3), interval(2, 0)], whole=False)
    assert [len(rows(c)) for c in chunks] == [4, 2] and oversized == []
    assert [c.positions for c in chunks] == [(0, 1), (1,)], "an interval without entries writes nothing"


def test_chunks_stay_within_the_byte_limit_with_each_intervals_extra_bytes(monkeypatch):
    monkeypatch.setattr(entries_module, "LEDGER_CHUNK_BYTES", 400)
    items = [IntervalEntries(interval_start=START + timedelta(days=d), entries=interval(d, 2).entries, extra_bytes=100)
             for d in range(6)]
    chunks, _ = batch_chunks(items, whole=True)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.entries.encode()) + 100 * len(chunk.positions) <= 400
    assert [p for c in chunks for p in c.positions] == list(range(6))


def test_a_chunk_holds_at_most_max_partitions_days(monkeypatch):
    monkeypatch.setattr(entries_module, "MAX_PARTITIONS_PER_JOB", 2)
    items = [interval(0, 1), interval(0, 1, hours=1), interval(1, 1), interval(2, 1), interval(3, 1)]
    chunks, _ = batch_chunks(items, whole=True)  # two hourly intervals of one day: one partition
    assert [c.positions for c in chunks] == [(0, 1, 2), (3, 4)]
    chunks, _ = batch_chunks(items, whole=True, partition=lambda start: start)
    assert [c.positions for c in chunks] == [(0, 1), (2, 3), (4,)]


def spec() -> ImportSpec:
    return ImportSpec(name="scores", project_id="test-project", bucket_name="some-bucket", path_base="drops",
                      file_match=r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/x\.parquet", destination_table="scores",
                      raw_dataset_name="raw", clean_dataset_name="clean", interval="Daily", mode="Incremental",
                      retention_days=30, format="PARQUET", start_date="2024-01-01", require_partition_filter=True)


SCHEMA = (bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("name", "STRING"))


def item(days: int, schema=SCHEMA) -> IntervalToPublish:
    start = START + timedelta(days=days)
    return IntervalToPublish(interval_start=start, raw_table_id=spec().raw_table_id(start), raw_schema=tuple(schema))


def test_merge_chunks_hold_at_most_max_partitions_intervals_and_the_query_length(monkeypatch):
    monkeypatch.setattr(publishing, "MAX_PARTITIONS_PER_JOB", 3)
    items = [item(d) for d in range(7)]
    assert merge_chunks(spec(), items, schema=SCHEMA) == [[0, 1, 2], [3, 4, 5], [6]]
    monkeypatch.setattr(publishing, "MAX_PARTITIONS_PER_JOB", 4000)
    one = len(publishing._select_of(spec(), items[0], index=0, columns=SCHEMA))
    monkeypatch.setattr(publishing, "MERGE_SQL_CHARS", 1_000 + 2 * one + 5)
    chunks = merge_chunks(spec(), items, schema=SCHEMA)
    assert [len(c) for c in chunks] == [2, 2, 2, 1]


def test_the_batch_merge_filters_partitions_where_require_partition_filter_needs_it():
    items = [item(0), item(1, schema=SCHEMA[:1])]
    sql = publishing._batch_merge_sql(spec(), items, schema=(*SCHEMA, bigquery.SchemaField("other", "FLOAT64")))
    places = merge_filter_places(sql)
    assert len(places) == 2, "the ON condition and the one NOT MATCHED BY SOURCE clause"
    assert all(has_partition_filter(place, "_interval_start", ["T"]) for place in places)
    assert "CAST(NULL AS STRING) AS `name`" in sql, "a column an interval lacks is a typed NULL"
    assert "`other`" not in sql, "a clean column no interval of the batch has is left out"
    assert sql.count("UNION ALL") == 1
