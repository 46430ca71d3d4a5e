"""Issue 19: the intervals of a run side by side (``max_concurrent_intervals``) keep every guarantee of one
interval after another.

(a) The real worker, importing 4 daily intervals at once, SIGKILLed at every checkpoint of that range run
(the same name fires once per interval, so also at a later occurrence in the middle of a round), then run
again: the end state (clean rows, raw tables, ledger, GCS objects) equals an uninterrupted run's, no row
twice, no pending load left behind. (b) Two such runs at once over overlapping windows end equal to one run
of their union.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from localdev.samples import score_rows
from tests.emulators.worker_helpers import REPO, day, drop, import_window, write_spec
from tests.faults.harness import duplicate_rows, end_state, run_killed
from tests.faults.kill_at import KILL_MARKER
from tests.faults.test_kill_points import comparable, make_pair

DAYS = [day(5), day(6), day(7), day(8)]
WINDOW = ["--start", "2024-01-05", "--end", "2024-01-09"]
CONCURRENT = {"max_concurrent_intervals": 4}

#: (checkpoint, nth): every checkpoint of a 4-interval round, at its first occurrence or at a middle one where
#: the round's intervals are at different points (some loaded or copied, some not; some recorded, some not).
KILLS = {
    "Overwrite": [("import.listed", 1), ("load.batch_loaded", 3), ("load.copied", 1),
                  ("load.copied", 3), ("import.recorded", 2), ("import.before_publish", 1), ("publish.copied", 1),
                  ("import.published", 1)],
    "Incremental": [("import.listed", 1), ("load.batch_loaded", 3), ("load.copied", 1),
                    ("load.copied", 3), ("import.published", 2), ("import.recorded", 1), ("import.recorded", 3)],
}

#: comparable() of one uninterrupted run, per mode (content only: the same for every case).
_REFERENCE: dict[str, tuple] = {}


def concurrent_pair(make, mode: str, *, days=DAYS):
    """The (spec, bucket) under test and the reference's, both importing up to 4 intervals at once, seeded
    with ``days`` (the first two are already seeded by :func:`make_pair`)."""
    made = []
    for spec, bucket in make(mode):
        spec = type(spec).from_dict({**spec.to_dict(), **CONCURRENT})
        for d in days[2:]:
            for i in range(2):
                drop(bucket, f"{spec.path_base}/{d:%Y-%m-%d}/part{i}.parquet",
                     score_rows(interval_start=d, count=3, seed=i))
        made.append((spec, bucket))
    return made


def reference(mode: str, ref_spec, ref_bucket, gcs_client, bq_client, *, days=DAYS) -> tuple:
    if mode not in _REFERENCE:  # computed once per mode, not once per case
        import_window(ref_spec, gcs_client, bq_client, days[0], days[-1].replace(day=days[-1].day + 1))
        _REFERENCE[mode] = comparable(end_state(ref_spec, bq_client, ref_bucket, days=days))
    return _REFERENCE[mode]


def assert_converged(spec, bucket, want: tuple, bq_client, *, days=DAYS) -> None:
    from worker.ledger import Ledger

    got = end_state(spec, bq_client, bucket, days=days)
    assert comparable(got) == want, f"got {got.describe()}"
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0
    assert Ledger(bq_client, spec).pending_loads.read(start=days[0], end=day(12)) == {}, "no pending load is left"


@pytest.mark.parametrize(("mode", "point", "nth"), [(m, p, n) for m, kills in KILLS.items() for p, n in kills])
def test_concurrent_range_killed_at_every_checkpoint_then_rerun_converges(mode, point, nth, gcs_client, bq_client,
                                                                          unique_name, tmp_path):
    (spec, bucket), (ref_spec, ref_bucket) = concurrent_pair(make_pair(gcs_client, unique_name), mode)
    want = reference(mode, ref_spec, ref_bucket, gcs_client, bq_client)

    killed = run_killed(["import", "--spec", str(write_spec(tmp_path, spec)), *WINDOW], at=point, nth=nth)
    assert killed.returncode == -9, f"the worker was not killed at {point}#{nth}: {killed.stderr[-2000:]}"
    assert f"{KILL_MARKER} {point} #{nth}" in killed.stderr, "the kill fired elsewhere"
    import_window(spec, gcs_client, bq_client, DAYS[0], day(9))  # raises when an interval fails

    assert_converged(spec, bucket, want, bq_client)


@pytest.mark.parametrize("mode", ["Overwrite", "Incremental"])
def test_two_concurrent_range_runs_on_overlapping_windows_equal_one_run(mode, gcs_client, bq_client, unique_name,
                                                                        tmp_path):
    """Two real workers at once, each importing its 4 intervals side by side: [01-05, 01-09) and [01-07, 01-11)
    share 01-07 and 01-08. Both succeed, and the end state equals one run over [01-05, 01-11)."""
    days = [*DAYS, day(9), day(10)]
    (spec, bucket), (ref_spec, ref_bucket) = concurrent_pair(make_pair(gcs_client, unique_name), mode, days=days)
    want = comparable_union(mode, ref_spec, ref_bucket, gcs_client, bq_client, days=days)

    path = str(write_spec(tmp_path, spec))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_PIPES_CONTEXT"}
    runs = [subprocess.Popen([sys.executable, "-m", "worker", "import", "--spec", path, "--start", start, "--end", end],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for start, end in (("2024-01-05", "2024-01-09"), ("2024-01-07", "2024-01-11"))]
    outcomes = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outcomes]

    assert_converged(spec, bucket, want, bq_client, days=days)
    if mode == "Overwrite":
        from worker.publishing import published_snapshot

        assert published_snapshot(bq_client, spec)[0] == "20240110"


_UNION: dict[str, tuple] = {}


def comparable_union(mode, ref_spec, ref_bucket, gcs_client, bq_client, *, days) -> tuple:
    if mode not in _UNION:
        import_window(ref_spec, gcs_client, bq_client, days[0], day(11))
        _UNION[mode] = comparable(end_state(ref_spec, bq_client, ref_bucket, days=days))
    return _UNION[mode]
