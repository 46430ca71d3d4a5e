"""Retention: deletes only objects the ledger recorded as loaded, of intervals past retention, at the loaded generation.

Emulator note: gcp-storage-emulator ignores ``if_generation_match`` on deletes, so the
"re-uploaded after its load" case is decided by the worker's own generation comparison
(listing vs ledger) before any delete is sent; on real GCS the precondition is a second guard.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from localdev.samples import score_rows
from tests.emulators.worker_helpers import (
    day,
    drop,
    drop_days,
    import_window,
    ledger_rows,
    make_spec,
    object_names,
    retain,
    run_cli,
    write_spec,
)

AS_OF = datetime(2024, 1, 12, 6, tzinfo=UTC)  # retention_days=3: cutoff 2024-01-09 06:00 -> intervals up to 01-08 are past


@pytest.fixture
def scenario(bucket, gcs_client, bq_client, unique_name):
    """Every kind of object retention must tell apart, with the loads done."""
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3)
    blobs = drop_days(bucket, spec, [day(5), day(6), day(7), day(8), day(9), day(10)], rows=2)
    others = {
        "junk": drop(bucket, "drops/junk.txt", [{"a": 1}], fmt="CSV"),
        "unparseable": drop(bucket, "drops/2024-13-45/scores.parquet", score_rows(interval_start=day(5), count=1)),
        "outside_prefix": drop(bucket, "other/2024-01-05/scores.parquet", score_rows(interval_start=day(5), count=1)),
    }
    import_window(spec, gcs_client, bq_client, day(5), day(7))  # 01-05, 01-06
    import_window(spec, gcs_client, bq_client, day(8), day(11))  # 01-08, 01-09, 01-10; 01-07 matched, never loaded
    # 01-06 re-uploaded after its load: its new data was never loaded, so it must survive
    reuploaded = drop(bucket, blobs[day(6)].name, score_rows(interval_start=day(6), count=3, seed=4))
    names = {
        "loaded_past": {blobs[day(5)].name, blobs[day(8)].name},
        "reuploaded": reuploaded.name,
        "never_loaded": blobs[day(7)].name,
        "inside_retention": {blobs[day(9)].name, blobs[day(10)].name},
        **{k: b.name for k, b in others.items()},
    }
    return spec, names


def test_dry_run_lists_and_deletes_nothing(scenario, bucket, gcs_client, bq_client):
    spec, names = scenario
    before = object_names(bucket)
    ledger_before = ledger_rows(bq_client, spec)

    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF, dry_run=True)

    assert summary.outcome.dry_run
    assert {o.name for o in summary.outcome.plan.to_delete} == names["loaded_past"]
    assert [o.name for o in summary.outcome.plan.changed_since_load] == [names["reuploaded"]]
    assert summary.outcome.deleted == []
    assert object_names(bucket) == before
    assert ledger_rows(bq_client, spec) == ledger_before


def test_deletes_only_loaded_objects_past_retention(scenario, bucket, gcs_client, bq_client):
    spec, names = scenario
    before = object_names(bucket)

    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert summary.outcome.plan.cutoff == datetime(2024, 1, 9, 6, tzinfo=UTC)
    assert {o.name for o in summary.outcome.deleted} == names["loaded_past"]
    assert [o.name for o in summary.outcome.kept_changed] == [names["reuploaded"]]
    assert summary.outcome.bytes_deleted == sum(o.size for o in summary.outcome.deleted) > 0
    remaining = object_names(bucket)
    assert remaining == before - names["loaded_past"]
    for kept in ("reuploaded", "never_loaded", "junk", "unparseable", "outside_prefix"):
        assert names[kept] in remaining, kept
    assert names["inside_retention"] <= remaining
    # the ledger stamps deleted_at on exactly the deleted rows
    stamped = {r["object_name"]: r["deleted_at"] for r in ledger_rows(bq_client, spec)}
    assert {n for n, at in stamped.items() if at is not None} == names["loaded_past"]
    assert all(at.astimezone(UTC) > AS_OF for n, at in stamped.items() if at is not None)  # wall-clock time of the delete


def test_second_retention_run_finds_nothing_more(scenario, bucket, gcs_client, bq_client):
    spec, _ = scenario
    retain(spec, gcs_client, bq_client, as_of=AS_OF)
    after_first = object_names(bucket)

    again = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert again.outcome.plan.to_delete == ()
    assert again.outcome.plan.already_gone == ()
    assert object_names(bucket) == after_first


def test_later_as_of_reaches_more_intervals_but_never_unloaded_ones(scenario, bucket, gcs_client, bq_client):
    spec, names = scenario
    summary = retain(spec, gcs_client, bq_client, as_of=datetime(2024, 3, 1, tzinfo=UTC))

    assert {o.name for o in summary.outcome.deleted} == names["loaded_past"] | names["inside_retention"]
    remaining = object_names(bucket)
    for kept in ("reuploaded", "never_loaded", "junk", "unparseable", "outside_prefix"):
        assert names[kept] in remaining, kept


def test_reuploaded_object_is_deleted_after_its_new_generation_is_loaded(scenario, bucket, gcs_client, bq_client):
    spec, names = scenario
    import_window(spec, gcs_client, bq_client, day(6))  # the new generation of 01-06 is loaded now

    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert names["reuploaded"] in {o.name for o in summary.outcome.deleted}
    assert names["reuploaded"] not in object_names(bucket)


def test_object_already_gone_is_marked_deleted(scenario, bucket, gcs_client, bq_client):
    spec, names = scenario
    gone = sorted(names["loaded_past"])[0]
    bucket.blob(gone).delete()

    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert [o.name for o in summary.outcome.plan.already_gone] == [gone]
    assert {o.name for o in summary.outcome.deleted} == names["loaded_past"] - {gone}
    stamped = {r["object_name"] for r in ledger_rows(bq_client, spec) if r["deleted_at"] is not None}
    assert stamped == names["loaded_past"]


def test_retention_as_subprocess(scenario, bucket, tmp_path):
    spec, names = scenario
    path = write_spec(tmp_path, spec)
    before = object_names(bucket)

    dry = run_cli(["retention", "--spec", str(path), "--dry-run", "--as-of", "2024-01-12T06:00:00Z"])

    assert dry.returncode == 0, dry.stderr
    assert dry.json["action"] == "retention" and dry.json["dry_run"] is True
    assert set(dry.json["objects_to_delete"]) == names["loaded_past"]
    assert dry.json["objects_deleted"] == 0 and dry.json["bytes_freed"] == 0
    assert "[dry run] would delete" in dry.stderr
    assert object_names(bucket) == before

    real = run_cli(["retention", "--spec", str(path), "--as-of", "2024-01-12T06:00:00Z"])

    assert real.returncode == 0, real.stderr
    assert real.json["dry_run"] is False
    assert set(real.json["deleted_names"]) == names["loaded_past"]
    assert real.json["objects_deleted"] == 2
    assert real.json["kept_changed_since_load"] == [names["reuploaded"]]
    assert object_names(bucket) == before - names["loaded_past"]


def test_retention_zero_days_keeps_nothing_loaded_but_still_only_loaded(bucket, gcs_client, bq_client, unique_name):
    """retention_days=0: an interval is past retention once it has ended; the current one is kept."""
    spec = make_spec(bucket.name, unique_name, retention_days=0)
    blobs = drop_days(bucket, spec, [day(5), day(6)], rows=1)
    import_window(spec, gcs_client, bq_client, day(5), day(7))

    summary = retain(spec, gcs_client, bq_client, as_of=datetime(2024, 1, 6, 12, tzinfo=UTC))

    assert [o.name for o in summary.outcome.deleted] == [blobs[day(5)].name]
    assert object_names(bucket) == {blobs[day(6)].name}


def test_specs_sharing_a_raw_dataset_keep_their_ledgers_apart(bucket, gcs_client, bq_client, unique_name):
    """Two assets, one bucket, one raw dataset (so one ledger table): loads and retention of one never touch the other."""
    a = make_spec(bucket.name, unique_name, name=f"a_{unique_name}", path_base="a", retention_days=1, mode="Incremental")
    b = make_spec(bucket.name, unique_name, name=f"b_{unique_name}", path_base="b", retention_days=1, mode="Incremental",
                  destination_table="other")
    assert a.ledger_table_id == b.ledger_table_id
    a_blobs = drop_days(bucket, a, [day(5), day(6)], rows=1)
    b_blobs = drop_days(bucket, b, [day(5), day(6)], rows=2)
    import_window(a, gcs_client, bq_client, day(5), day(7))
    import_window(b, gcs_client, bq_client, day(5), day(7))
    # re-loading a's 01-05 replaces a's ledger rows for that interval only
    drop(bucket, a_blobs[day(5)].name, score_rows(interval_start=day(5), count=3, seed=8))
    import_window(a, gcs_client, bq_client, day(5))

    summary = retain(a, gcs_client, bq_client, as_of=datetime(2024, 2, 1, tzinfo=UTC))

    assert {o.name for o in summary.outcome.deleted} == {"a/2024-01-05/scores.parquet", "a/2024-01-06/scores.parquet"}
    assert {b.name for b in b_blobs.values()} <= object_names(bucket)
    by_asset = {}
    for r in ledger_rows(bq_client, a):  # the whole shared ledger table
        by_asset.setdefault(r["asset"], set()).add((r["object_name"], r["deleted_at"] is None))
    assert by_asset == {
        a.name: {("a/2024-01-05/scores.parquet", False), ("a/2024-01-06/scores.parquet", False)},
        b.name: {("b/2024-01-05/scores.parquet", True), ("b/2024-01-06/scores.parquet", True)},
    }


def test_retention_before_any_import_deletes_nothing(bucket, gcs_client, bq_client, unique_name):
    """A first-ever run that is a retention run: the ledger is created empty, so nothing is deletable."""
    spec = make_spec(bucket.name, unique_name, retention_days=0)
    drop_days(bucket, spec, [day(5), day(6)], rows=1)
    before = object_names(bucket)

    summary = retain(spec, gcs_client, bq_client, as_of=datetime(2025, 1, 1, tzinfo=UTC))

    assert summary.outcome.plan.to_delete == () and summary.outcome.deleted == []
    assert object_names(bucket) == before
    assert ledger_rows(bq_client, spec) == []
