"""Archive instead of delete under faults (issue 20.4): the real worker SIGKILLed between rewrite and delete, and
a source re-uploaded while it is being archived.

A kill leaves both copies; the next retention verifies the copy it finds (412 on ``ifGenerationMatch=0``) and
finishes, and the end state equals an uninterrupted run's (objects in both buckets, ledger, rows). A re-upload
is unloaded data: its new generation is neither archived over (412 on ``ifSourceGenerationMatch``) nor deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from localdev.samples import score_rows
from tests.emulators.worker_helpers import day, drop, import_window, ledger_rows, make_spec, retain, table_rows, write_spec
from tests.faults.harness import at_checkpoint, run_killed
from tests.faults.kill_at import KILL_MARKER
from worker import archiving
from worker.archive_decisions import ArchiveVerdict

AS_OF = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = [day(5), day(6)]
PREFIX = "cold/"


def make_archived(gcs_client, unique_name: str, suffix: str, *, parts: int = 2):
    """(spec, drop bucket, archive bucket), seeded with the same rows for every suffix, loaded."""
    drop_bucket = gcs_client.create_bucket(f"{unique_name}-{suffix}".replace("_", "-"))
    archive = gcs_client.create_bucket(f"{unique_name}-{suffix}-arch".replace("_", "-"))
    spec = make_spec(drop_bucket.name, f"{unique_name}{suffix}", mode="Incremental", retention_days=3,
                     retention_action="archive", archive_bucket=archive.name, archive_prefix=PREFIX)
    for d in DAYS:
        for i in range(parts):
            drop(drop_bucket, f"{spec.path_base}/{d:%Y-%m-%d}/part{i}.parquet",
                 score_rows(interval_start=d, count=30, seed=i))
    return spec, drop_bucket, archive


def state(spec, bq, drop_bucket, archive) -> tuple:
    """Comparable across buckets: names left in the drop bucket, the archive's names and checksums, the ledger
    (archive URIs without their bucket), the clean rows."""
    ledger = sorted((r["object_name"], r["deleted_at"] is not None, r["interval_rows"],
                     (r["archive_uri"] or "").replace(archive.name, "ARCHIVE"), r["archive_generation"] is not None)
                    for r in ledger_rows(bq, spec))
    return (sorted(b.name for b in drop_bucket.client.list_blobs(drop_bucket.name)),
            sorted((b.name, b.size, b.crc32c) for b in archive.client.list_blobs(archive.name)),
            ledger, table_rows(bq, spec.clean_table_id))


@pytest.mark.parametrize("point", ["retention.rewritten", "retention.archived"])
def test_killed_between_rewrite_and_delete_then_retention_verifies_and_finishes(point, gcs_client, bq_client,
                                                                                  unique_name, tmp_path, conformance):
    (spec, drop_bucket, archive), ref = (make_archived(gcs_client, unique_name, s) for s in ("k", "r"))
    for s in (spec, ref[0]):
        import_window(s, gcs_client, bq_client, DAYS[0], day(7))
    retain(ref[0], gcs_client, bq_client, as_of=AS_OF)  # the uninterrupted run

    killed = run_killed(["retention", "--spec", str(write_spec(tmp_path, spec)), "--as-of", AS_OF.isoformat()],
                        at=point)
    assert killed.returncode == -9 and f"{KILL_MARKER} {point}" in killed.stderr, killed.stderr[-2000:]
    copies = {b.name for b in gcs_client.list_blobs(archive.name)}
    both = [b.name for b in gcs_client.list_blobs(drop_bucket.name) if PREFIX + b.name in copies]
    assert both, "the kill left an object in both buckets"
    if point == "retention.rewritten":  # killed before the ledger heard of any copy
        assert all(r["archive_generation"] is None for r in ledger_rows(bq_client, spec))

    preconditions = conformance.answered["storage_generation_preconditions"]
    summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert conformance.answered["storage_generation_preconditions"] >= preconditions + len(both), \
        "the next retention met the copies the kill left (412 on ifGenerationMatch=0)"
    verified = summary.outcome.archive.with_verdict(ArchiveVerdict.verified_existing)
    assert {r.obj.name for r in verified} >= set(both)
    assert state(spec, bq_client, drop_bucket, archive) == state(ref[0], bq_client, ref[1], ref[2]), \
        "the end state differs from the uninterrupted run's"


@pytest.mark.parametrize("point", ["retention.source_read", "retention.archived"])
def test_a_reupload_during_archiving_is_neither_archived_over_nor_deleted(point, gcs_client, bq_client, unique_name,
                                                                         conformance, monkeypatch):
    monkeypatch.setattr(archiving, "REWRITE_THREADS", 1)  # the first object in plan order reaches the point first
    spec, drop_bucket, archive = make_archived(gcs_client, unique_name, "u", parts=1)
    import_window(spec, gcs_client, bq_client, DAYS[0], day(7))
    name = f"{spec.path_base}/{DAYS[0]:%Y-%m-%d}/part0.parquet"
    loaded = drop_bucket.get_blob(name)
    reuploaded = []

    def reupload() -> None:
        reuploaded.append(drop(drop_bucket, name, score_rows(interval_start=DAYS[0], count=7, seed=5)))

    refused = conformance.answered["storage_generation_preconditions"]
    with at_checkpoint(point, reupload) as passed:
        summary = retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert point in passed and len(reuploaded) == 1, "the re-upload happened at the checkpoint"
    assert conformance.answered["storage_generation_preconditions"] > refused, "GCS refused with 412 (the fault fired)"
    new = drop_bucket.get_blob(name)
    assert new is not None and new.generation == reuploaded[0].generation != loaded.generation, \
        "the new generation is not deleted"
    copy = archive.get_blob(PREFIX + name)
    row = next(r for r in ledger_rows(bq_client, spec) if r["object_name"] == name)
    if point == "retention.source_read":  # the rewrite was refused: nothing archived, nothing recorded
        assert copy is None and row["archive_generation"] is None
    else:  # the loaded generation was archived before the re-upload; the delete was refused
        assert (copy.size, copy.crc32c) == (loaded.size, loaded.crc32c) != (new.size, new.crc32c)
        assert row["archive_generation"] == copy.generation
    assert row["deleted_at"] is None
    assert name in {o.name for o in summary.outcome.kept_changed}
    other = f"{spec.path_base}/{DAYS[1]:%Y-%m-%d}/part0.parquet"
    assert drop_bucket.get_blob(other) is None and archive.get_blob(PREFIX + other) is not None, \
        "the other object was archived and deleted as usual"
