"""Archive instead of delete (issue 20.4) against the emulators, through the conformance proxy (which enforces the
rewrite's generation preconditions and makes each rewrite take several calls with a rewriteToken).

Only loaded objects past retention move; each copy is verified (size and CRC32C) and its generation recorded in
the ledger before the original is deleted; a copy that exists with other content is never trusted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.cloud import bigquery

from localdev.samples import score_rows
from tests.emulators.worker_helpers import day, drop, drop_days, import_window, ledger_rows, make_spec, object_names
from worker.core.errors import WorkerError
from worker.core.spec import ImportSpec
from worker.ledger import LEDGER_SCHEMA, Ledger
from worker.reporting import retention_metadata
from worker.run import run_retention

AS_OF = datetime(2024, 1, 12, 6, tzinfo=UTC)  # retention_days=3: intervals up to 01-08 are past
PREFIX = "cold/"


class Said:
    """A reporter that keeps what the run said."""

    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def archive_spec(bucket_name: str, archive_bucket: str, unique_name: str) -> ImportSpec:
    return make_spec(bucket_name, unique_name, mode="Incremental", retention_days=3, retention_action="archive",
                     archive_bucket=archive_bucket, archive_prefix=PREFIX)


def retain(spec, gcs, bq, *, dry_run: bool = False):
    said = Said()
    return run_retention(spec=spec, gcs=gcs, bq=bq, reporter=said, as_of=AS_OF, dry_run=dry_run), said


@pytest.fixture
def scenario(bucket, gcs_client, bq_client, unique_name):
    """Days 05 and 06 loaded and past retention, 07 matched but never loaded, 10 loaded inside retention."""
    archive = gcs_client.create_bucket(f"{unique_name}-arch".replace("_", "-"))
    spec = archive_spec(bucket.name, archive.name, unique_name)
    blobs = drop_days(bucket, spec, [day(5), day(6), day(7), day(10)], rows=40)
    import_window(spec, gcs_client, bq_client, day(5), day(7))
    import_window(spec, gcs_client, bq_client, day(10))
    originals = {d: (b.name, b.size, b.crc32c) for d, b in blobs.items()}
    return spec, archive, originals


def test_archive_moves_loaded_objects_past_retention_verified_and_recorded(scenario, bucket, gcs_client, bq_client,
                                                                             conformance):
    spec, archive, originals = scenario
    moved = {originals[day(5)][0], originals[day(6)][0]}

    summary, said = retain(spec, gcs_client, bq_client)

    assert conformance.rule("storage_rewrite_tokens").partial_answers >= 2, "each rewrite took several calls"
    copies = {b.name: b for b in gcs_client.list_blobs(archive.name)}
    assert set(copies) == {PREFIX + name for name in moved}
    for name, size, crc in (originals[day(5)], originals[day(6)]):
        assert (copies[PREFIX + name].size, copies[PREFIX + name].crc32c) == (size, crc)
    assert object_names(bucket) == {originals[day(7)][0], originals[day(10)][0]}, "unloaded and younger stay"
    rows = {r["object_name"]: r for r in ledger_rows(bq_client, spec)}
    for name in moved:
        assert rows[name]["archive_generation"] == copies[PREFIX + name].generation
        assert rows[name]["archive_uri"] == f"gs://{archive.name}/{PREFIX}{name}"
        assert rows[name]["deleted_at"] is not None
    assert rows[originals[day(10)][0]]["archive_generation"] is None
    meta = {k: v["raw_value"] for k, v in retention_metadata(summary).items()}
    assert (meta["objects_archived"], meta["objects_deleted"]) == (2, 2)
    assert meta["bytes_archived"] == originals[day(5)][1] + originals[day(6)][1] == meta["bytes_deleted"]
    assert meta["archive_copies_untrusted"] == [] and said.warnings == []


def test_dry_run_moves_nothing_and_lists_what_would_move(scenario, bucket, gcs_client, bq_client):
    spec, archive, originals = scenario
    before, ledger_before = object_names(bucket), ledger_rows(bq_client, spec)

    summary, said = retain(spec, gcs_client, bq_client, dry_run=True)

    assert object_names(bucket) == before and list(gcs_client.list_blobs(archive.name)) == []
    assert ledger_rows(bq_client, spec) == ledger_before
    meta = {k: v["raw_value"] for k, v in retention_metadata(summary).items()}
    name = originals[day(5)][0]
    assert {"source": f"gs://{bucket.name}/{name}", "destination": f"gs://{archive.name}/{PREFIX}{name}"} in \
        meta["objects_to_archive"]
    assert len(meta["objects_to_archive"]) == 2
    assert meta["bytes_to_archive"] == originals[day(5)][1] + originals[day(6)][1]
    assert f"[dry run] would archive gs://{bucket.name}/{name} -> gs://{archive.name}/{PREFIX}{name} " \
           f"({originals[day(5)][1]} bytes), then delete the original" in said.infos


def test_an_existing_copy_with_other_content_is_never_trusted(scenario, bucket, gcs_client, bq_client):
    spec, archive, originals = scenario
    name5, name6 = originals[day(5)][0], originals[day(6)][0]
    impostor = drop(archive, PREFIX + name5, score_rows(interval_start=day(5), count=3, seed=9))

    summary, said = retain(spec, gcs_client, bq_client)

    assert name5 in object_names(bucket), "the original whose copy differs is kept"
    assert archive.get_blob(PREFIX + name5).generation == impostor.generation, "the copy is never overwritten"
    assert name6 not in object_names(bucket) and archive.get_blob(PREFIX + name6) is not None
    [warning] = said.warnings
    assert "\n" not in warning
    for part in (f"gs://{bucket.name}/{name5}", f"gs://{archive.name}/{PREFIX}{name5}", "other content",
                 "never overwritten", "run retention again"):
        assert part in warning
    rows = {r["object_name"]: r for r in ledger_rows(bq_client, spec)}
    assert rows[name5]["archive_generation"] is None and rows[name5]["deleted_at"] is None
    assert [o.name for o in summary.outcome.deleted] == [name6]


def test_an_earlier_ledger_gains_the_archive_columns_in_place(bq_client, unique_name):
    spec = make_spec("some-bucket", unique_name)
    bq_client.create_dataset(f"{spec.project_id}.{spec.raw_dataset_name}")
    old = [f for f in LEDGER_SCHEMA if f.name not in ("archive_uri", "archive_generation")]
    bq_client.create_table(bigquery.Table(spec.ledger_table_id, schema=old))

    Ledger(bq_client, spec).ensure()

    # (read through a query: bqemulator does not update tables.get's schema after the patch)
    table = f"`{spec.ledger_table_id.replace('.', '`.`')}`"
    assert list(bq_client.query(f"SELECT archive_uri, archive_generation FROM {table}").result()) == []


def test_a_missing_archive_bucket_fails_in_one_line_and_deletes_nothing(bucket, gcs_client, bq_client, unique_name):
    spec = archive_spec(bucket.name, f"{unique_name}-nowhere".replace("_", "-"), unique_name)
    drop_days(bucket, spec, [day(5)], rows=3)
    import_window(spec, gcs_client, bq_client, day(5))
    before = object_names(bucket)

    with pytest.raises(WorkerError) as failure:
        retain(spec, gcs_client, bq_client)

    message = str(failure.value)
    assert "\n" not in message and "archive_bucket" in message and spec.archive_bucket in message
    assert "nothing was deleted" in message
    assert object_names(bucket) == before
    assert all(r["archive_generation"] is None and r["deleted_at"] is None for r in ledger_rows(bq_client, spec))


def test_an_archiving_import_reports_its_materialization_through_pipes(bucket, gcs_client, unique_name) -> None:
    """The import's metadata of an archiving spec is the import's own (a merge once reported retention's archive
    figures from an import summary, which has none: the worker failed after loading)."""
    import dagster as dg

    from tests.emulators.test_worker_pipes import _asset, _materialize
    from worker.core import contract as c

    archive = gcs_client.create_bucket(f"{unique_name}-arch".replace("_", "-"))
    spec = archive_spec(bucket.name, archive.name, unique_name)
    drop_days(bucket, spec, [day(5)], rows=4)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(_asset(spec), "2024-01-05", instance)
    assert result.success
    [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.metadata[c.META_ROW_COUNT] == dg.IntMetadataValue(4)
    assert c.META_OBJECTS_ARCHIVED not in mat.metadata


def test_a_kept_original_keeps_its_intervals_completeness_marker(bucket, gcs_client, bq_client, unique_name) -> None:
    """Archiving and the completeness gate together: an original kept because its archive copy differs is a loaded
    file still present, so its interval's marker stays; the other interval's marker goes after its archived file."""
    from localdev.samples import upload

    archive = gcs_client.create_bucket(f"{unique_name}-arch".replace("_", "-"))
    spec = make_spec(bucket.name, unique_name, mode="Incremental", retention_days=3, retention_action="archive",
                     archive_bucket=archive.name, archive_prefix=PREFIX,
                     complete_when={"marker_match": r"(?P<interval_timestamp>\d{4}-\d{2}-\d{2})/_success\.parquet"})
    blobs = drop_days(bucket, spec, [day(5), day(6)], rows=5)
    markers = {d: upload(bucket, f"drops/{d:%Y-%m-%d}/_success.parquet", b"").name for d in (day(5), day(6))}
    import_window(spec, gcs_client, bq_client, day(5), day(7))
    drop(archive, PREFIX + blobs[day(5)].name, score_rows(interval_start=day(5), count=3, seed=9))  # differs

    summary, said = retain(spec, gcs_client, bq_client)

    assert len(said.warnings) == 1, "the differing copy was met (the fault fired)"
    assert [o.name for o in summary.outcome.deleted] == [blobs[day(6)].name]
    assert [o.name for o in summary.outcome.markers_deleted] == [markers[day(6)]]
    assert object_names(bucket) == {blobs[day(5)].name, markers[day(5)]}
