"""Issue 8: SIGKILL the worker at every phase boundary, re-run, and compare the end state with an
uninterrupted run (clean rows and checksum, each raw table, the ledger, the GCS objects).

The reference run uses a second bucket seeded with the same rows and its own datasets, so the
two never touch each other; states are compared by content (names, rows), not by generations
or digests (which differ between buckets and specs by construction).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from localdev.samples import score_rows
from tests.emulators.worker_helpers import day, drop, import_window, make_spec, retain, write_spec
from tests.faults.harness import EndState, duplicate_rows, end_state, run_killed

AS_OF = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = [day(5), day(6)]
WINDOW = ["--start", "2024-01-05", "--end", "2024-01-07"]

IMPORT_POINTS = {
    "Overwrite": ["import.listed", "load.batch_loaded", "load.copied", "import.recorded", "import.before_publish",
                  "import.published"],
    "Incremental": ["import.listed", "load.batch_loaded", "load.copied", "import.published", "import.recorded"],
}
RETENTION_POINTS = [("retention.planned", 1), ("retention.sealed", 1), ("retention.batch_deleted", 1),
                    ("retention.deleted", 1)]


def seed(bucket, spec) -> None:
    for d in DAYS:
        for i in range(2):
            drop(bucket, f"{spec.path_base}/{d:%Y-%m-%d}/part{i}.parquet", score_rows(interval_start=d, count=3, seed=i))


def comparable(state: EndState) -> tuple:
    return (state.clean_rows, state.clean_checksum, state.raw,
            # ledger without generation and digest (they differ between buckets and specs by construction)
            tuple(sorted((interval, name, rows, deleted) for interval, name, _, rows, deleted, _ in state.ledger)),
            frozenset(name for name, _ in state.objects))


@pytest.fixture
def pair(gcs_client, bq_client, unique_name):
    """(spec, bucket) under test and (spec, bucket) of the uninterrupted reference, seeded alike."""

    def make(mode: str):
        made = []
        for suffix in ("k", "r"):
            bucket = gcs_client.create_bucket(f"{unique_name}-{suffix}".replace("_", "-"))
            spec = make_spec(bucket.name, f"{unique_name}{suffix}", mode=mode, retention_days=3)
            spec = type(spec).from_dict({**spec.to_dict(), "name": f"scores_{unique_name}"})  # same asset name
            seed(bucket, spec)
            made.append((spec, bucket))
        return made

    return make


def assert_same(spec, bucket, ref_spec, ref_bucket, bq) -> None:
    got, want = end_state(spec, bq, bucket, days=DAYS), end_state(ref_spec, bq, ref_bucket, days=DAYS)
    assert comparable(got) == comparable(want), f"after the kill: {got.describe()}\nuninterrupted: {want.describe()}"
    assert duplicate_rows(bq, spec.clean_table_id) == 0
    from worker.ledger import Ledger

    assert Ledger(bq, spec).pending(start=DAYS[0], end=day(8)) == {}, "no pending load is left behind"


@pytest.mark.parametrize("with_retention", [False, True], ids=["rerun", "retention-then-rerun"])
@pytest.mark.parametrize(("mode", "point"), [(m, p) for m, points in IMPORT_POINTS.items() for p in points])
def test_import_killed_then_rerun_converges(mode, point, with_retention, pair, gcs_client, bq_client, tmp_path):
    (spec, bucket), (ref_spec, ref_bucket) = pair(mode)
    import_window(ref_spec, gcs_client, bq_client, DAYS[0], DAYS[-1].replace(day=7))
    if with_retention:
        retain(ref_spec, gcs_client, bq_client, as_of=AS_OF)

    killed = run_killed(["import", "--spec", str(write_spec(tmp_path, spec)), *WINDOW], at=point)
    assert killed.returncode == -9, f"the worker was not killed at {point}: {killed.stderr[-2000:]}"
    if with_retention:
        retain(spec, gcs_client, bq_client, as_of=AS_OF)  # only what the ledger recorded may go
    import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[-1].replace(day=7))
    if with_retention:
        retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert_same(spec, bucket, ref_spec, ref_bucket, bq_client)


@pytest.mark.parametrize(("point", "nth"), RETENTION_POINTS)
@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_retention_killed_then_import_and_retention_converge(mode, point, nth, pair, gcs_client, bq_client, tmp_path):
    (spec, bucket), (ref_spec, ref_bucket) = pair(mode)
    for s in (spec, ref_spec):
        import_window(s, gcs_client, bq_client, DAYS[0], DAYS[-1].replace(day=7))
    retain(ref_spec, gcs_client, bq_client, as_of=AS_OF)
    rows_before = end_state(spec, bq_client, bucket, days=DAYS)

    killed = run_killed(["retention", "--spec", str(write_spec(tmp_path, spec)), "--as-of", AS_OF.isoformat()],
                        at=point, nth=nth, delete_batch_size=2)
    assert killed.returncode == -9, f"the worker was not killed at {point}: {killed.stderr[-2000:]}"
    import_window(spec, gcs_client, bq_client, DAYS[0], DAYS[-1].replace(day=7))  # the dangerous step
    after_import = end_state(spec, bq_client, bucket, days=DAYS)
    assert (after_import.clean_rows, after_import.clean_checksum, after_import.raw) == \
        (rows_before.clean_rows, rows_before.clean_checksum, rows_before.raw), "the import after the kill changed rows"
    retain(spec, gcs_client, bq_client, as_of=AS_OF)

    assert_same(spec, bucket, ref_spec, ref_bucket, bq_client)


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_two_workers_on_overlapping_ranges_at_once(mode, pair, gcs_client, bq_client, tmp_path):
    """Two real worker processes started together on overlapping windows ([01-05, 01-07) and [01-06, 01-08)):
    both succeed, no row twice, and the end state equals one uninterrupted run of the union."""
    import subprocess
    import sys

    from tests.emulators.worker_helpers import REPO

    (spec, bucket), (ref_spec, ref_bucket) = pair(mode)
    for s, b in ((spec, bucket), (ref_spec, ref_bucket)):
        drop(b, f"{s.path_base}/2024-01-07/part0.parquet", score_rows(interval_start=day(7), count=3, seed=9))
    import_window(ref_spec, gcs_client, bq_client, day(5), day(8))
    path = str(write_spec(tmp_path, spec))
    workers = [subprocess.Popen([sys.executable, "-m", "worker", "import", "--spec", path, "--start", a, "--end", b],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for a, b in (("2024-01-05", "2024-01-07"), ("2024-01-06", "2024-01-08"))]
    outcomes = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outcomes]

    days = [*DAYS, day(7)]
    got, want = end_state(spec, bq_client, bucket, days=days), end_state(ref_spec, bq_client, ref_bucket, days=days)
    assert comparable(got) == comparable(want), f"concurrent: {got.describe()}\nsingle run: {want.describe()}"
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0
    for d in days:
        assert duplicate_rows(bq_client, spec.raw_table_id(d)) == 0
