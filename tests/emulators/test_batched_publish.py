"""Publishing one round of Incremental intervals (issue 19): ``publish_incremental_many`` ends where one
``publish_incremental`` per interval ends (clean rows, columns, each interval's outcome), with one clean-table
schema patch and one MERGE for the round, counted through the conformance proxy; an interval whose checks fail
is left out, and a failing batch MERGE falls back to one statement per interval so only the bad one fails."""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import bigquery

from tests.emulators.worker_helpers import day, make_spec, query
from worker.core.errors import WorkerError
from worker.core.records import IntervalRecord, LedgerEntry, PendingKey, PendingWrite
from worker.core.retries import RetryBudget
from worker.core.spec import ImportSpec
from worker.ledger import Ledger
from worker.publishing import IncrementalPublish, IntervalToPublish, publish_incremental, publish_incremental_many


def q(table_id: str) -> str:
    return f"`{table_id.replace('.', '`.`')}`"


def spec_for(bq_client, name: str) -> ImportSpec:
    spec = make_spec("some-bucket", name, mode="Incremental", schema_evolution="add_columns",
                     require_partition_filter=True)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    bq_client.create_dataset(f"{spec.project_id}.{spec.clean_dataset_name}")
    return spec


def raw(bq_client, spec: ImportSpec, start: datetime, select: str) -> IntervalToPublish:
    """A raw table of ``start`` holding ``select``'s rows (as a load would leave it)."""
    table_id = spec.raw_table_id(start)
    bq_client.query(f"CREATE OR REPLACE TABLE {q(table_id)} AS {select}").result()
    return IntervalToPublish(interval_start=start, raw_table_id=table_id,
                             raw_schema=tuple(bq_client.get_table(table_id).schema))


def clean_state(bq_client, spec: ImportSpec) -> tuple[list, list]:
    """(rows, columns) of the clean table (rows read with a partition filter: the table requires one)."""
    rows = query(bq_client, f"SELECT * FROM {q(spec.clean_table_id)} "
                            f"WHERE {spec.interval_column} >= TIMESTAMP '2000-01-01'")
    columns = [(f.name, f.field_type, f.mode) for f in bq_client.get_table(spec.clean_table_id).schema]
    return sorted(sorted((k, str(v)) for k, v in r.items()) for r in rows), columns


def one_each(bq_client, spec: ImportSpec, items: list[IntervalToPublish]) -> list:
    outcomes = []
    for item in items:
        try:
            outcomes.append(publish_incremental(bq_client, spec, raw_table_id=item.raw_table_id,
                                                interval_start=item.interval_start, raw_schema=item.raw_schema,
                                                budget=RetryBudget()))
        except WorkerError as exc:
            outcomes.append(exc)
    return outcomes


def described(outcomes: list) -> list:
    return [str(o) if isinstance(o, WorkerError) else o.changes for o in outcomes]


def jobs(log) -> int:
    return sum(1 for r in log if r.method == "POST" and r.target.split("?")[0].endswith("/jobs"))


def table_updates(log, table_id: str) -> int:
    name = table_id.rsplit(".", 1)[1]
    return sum(1 for r in log if r.method in ("PATCH", "PUT") and r.target.split("?")[0].endswith(f"/tables/{name}"))


def round_of(bq_client, spec: ImportSpec) -> list[IntervalToPublish]:
    """Day 1 again (fewer rows), day 2 with a new column, day 3 with a type change (refused), day 4 new."""
    return [raw(bq_client, spec, day(1), "SELECT 10 AS id, 'new' AS name"),
            raw(bq_client, spec, day(2), "SELECT 2 AS id, 'b' AS name, 1.5 AS extra UNION ALL SELECT 3, 'c', 2.5"),
            raw(bq_client, spec, day(3), "SELECT 'x' AS id, 'c' AS name"),
            raw(bq_client, spec, day(4), "SELECT 4 AS id, CAST(NULL AS STRING) AS name")]


def earlier(bq_client, spec: ImportSpec) -> None:
    """Days 1 and 9 already published."""
    one_each(bq_client, spec, [raw(bq_client, spec, day(1), "SELECT 1 AS id, 'old' AS name UNION ALL SELECT 2, 'old'"),
                               raw(bq_client, spec, day(9), "SELECT 9 AS id, 'kept' AS name")])


def test_a_round_publishes_as_one_call_each_with_one_schema_patch_and_one_merge(conformance, bq_client, unique_name):
    batched, single = spec_for(bq_client, f"{unique_name}b"), spec_for(bq_client, f"{unique_name}s")
    for spec in (batched, single):
        earlier(bq_client, spec)
    expected = one_each(bq_client, single, round_of(bq_client, single))
    items = round_of(bq_client, batched)
    with conformance.recording() as log:
        outcomes = publish_incremental_many(bq_client, batched, items, budget=RetryBudget())

    assert described(outcomes) == [d.replace(single.name, batched.name).replace(single.raw_dataset_name,
                                                                                batched.raw_dataset_name)
                                   .replace(single.clean_dataset_name, batched.clean_dataset_name)
                                   if isinstance(d, str) else d for d in described(expected)]
    assert isinstance(outcomes[2], WorkerError) and "column types differ" in str(outcomes[2])
    assert [c.column for c in outcomes[1].changes] == ["extra"]
    assert jobs(log) == 1, "one MERGE for the three publishable intervals"
    assert table_updates(log, batched.clean_table_id) == 1, "one schema patch for the round"
    assert len({o.job_id for o in outcomes if isinstance(o, IncrementalPublish)}) == 1
    assert clean_state(bq_client, batched) == clean_state(bq_client, single)
    rows, _ = clean_state(bq_client, batched)
    assert len(rows) == 5, "day 1 replaced (1 row), day 2 (2), day 4 (1), day 9 kept (1); day 3 not published"


def test_a_failing_batch_merge_falls_back_to_one_merge_per_interval(conformance, bq_client, unique_name):
    spec = spec_for(bq_client, unique_name)
    earlier(bq_client, spec)
    good = [raw(bq_client, spec, day(1), "SELECT 10 AS id, 'new' AS name"),
            raw(bq_client, spec, day(3), "SELECT 3 AS id, 'c' AS name")]
    # its checks pass (its columns are the clean table's), its MERGE fails: the raw table is gone
    gone = IntervalToPublish(interval_start=day(2), raw_table_id=spec.raw_table_id(day(2)), raw_schema=good[0].raw_schema)
    with conformance.recording() as log:
        outcomes = publish_incremental_many(bq_client, spec, [good[0], gone, good[1]], budget=RetryBudget())
    assert isinstance(outcomes[0], IncrementalPublish) and isinstance(outcomes[2], IncrementalPublish)
    assert isinstance(outcomes[1], WorkerError) and spec.raw_table_id(day(2)).rsplit(".", 1)[1] in str(outcomes[1])
    assert jobs(log) == 4, "the failed batch MERGE, then one MERGE per interval"
    rows, _ = clean_state(bq_client, spec)
    assert sorted((dict(r)["id"], dict(r)["name"]) for r in rows) == [("10", "new"), ("3", "c"), ("9", "kept")]


def test_twenty_fresh_intervals_take_four_dml_statements(conformance, bq_client, unique_name):
    """The round's statement count (issue 19: at most 6 for 20 fresh intervals): pending write, publish,
    ledger record, pending drop, one statement each."""
    spec = spec_for(bq_client, unique_name)
    ledger = Ledger(bq_client, spec)
    ledger.ensure()
    starts = [day(n) for n in range(1, 21)]
    items = [raw(bq_client, spec, s, f"SELECT {n} AS id, 'r{n}' AS name") for n, s in enumerate(starts)]
    keys = [PendingKey(copy_job_base=f"copy_{n}", staging_table_id=f"staging_{n}", append=False) for n in range(20)]
    entries = [(LedgerEntry(name=f"{s:%Y-%m-%d}/a.parquet", generation=n + 1, size=5, job_id=f"copy_{n}"),)
               for n, s in enumerate(starts)]
    now = datetime.now(UTC)
    with conformance.recording() as log:
        ledger.pending_loads.write_many([PendingWrite(interval_start=s, key=k, entries=e)
                                         for s, k, e in zip(starts, keys, entries, strict=True)], created_at=now)
        outcomes = publish_incremental_many(bq_client, spec, items, budget=RetryBudget())
        ledger.record_intervals([IntervalRecord(interval_start=s, entries=e, interval_rows=1, raw_table=i.raw_table_id,
                                                loaded_at=now, digest="d")
                                 for s, e, i in zip(starts, entries, items, strict=True)])
        ledger.pending_loads.drop_many(list(zip(starts, keys, strict=True)))
    assert all(isinstance(o, IncrementalPublish) for o in outcomes)
    assert jobs(log) == 4
    rows, _ = clean_state(bq_client, spec)
    assert len(rows) == 20
    assert len(ledger.recorded()) == 20 and ledger.pending_loads.read(start=day(1), end=day(28)) == {}


def test_a_struct_column_an_interval_lacks_sends_it_alone(conformance, bq_client, unique_name):
    """A column the batch cannot fill with a typed NULL (a STRUCT): that interval is published by itself."""
    spec = spec_for(bq_client, unique_name)
    bq_client.create_table(bigquery.Table(spec.raw_table_id(day(8)), schema=[
        bigquery.SchemaField("id", "INT64"),
        bigquery.SchemaField("s", "RECORD", fields=[bigquery.SchemaField("x", "INT64")])]))
    earlier_item = raw(bq_client, spec, day(8), "SELECT 8 AS id, STRUCT(1 AS x) AS s")
    assert isinstance(one_each(bq_client, spec, [earlier_item])[0], IncrementalPublish)
    items = [raw(bq_client, spec, day(1), "SELECT 1 AS id, STRUCT(2 AS x) AS s"),
             raw(bq_client, spec, day(2), "SELECT 2 AS id")]
    with conformance.recording() as log:
        outcomes = publish_incremental_many(bq_client, spec, items, budget=RetryBudget())
    assert all(isinstance(o, IncrementalPublish) for o in outcomes)
    assert jobs(log) == 2, "day 1 in the batch MERGE, day 2 alone"
    assert outcomes[0].job_id != outcomes[1].job_id
    rows, _ = clean_state(bq_client, spec)
    assert len(rows) == 3
