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
                  "publish.copied", "import.published"],
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
def pair(gcs_client, unique_name):
    """(spec, bucket) under test and (spec, bucket) of the uninterrupted reference, seeded alike."""
    return make_pair(gcs_client, unique_name)


def make_pair(gcs_client, unique_name):
    """``make(mode)`` → [(spec, bucket) under test, (spec, bucket) of the reference], seeded alike."""

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

    assert Ledger(bq, spec).pending_loads.read(start=DAYS[0], end=day(8)) == {}, "no pending load is left behind"


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


# -- two workers on overlapping windows, one paused at a checkpoint while the other runs ----------------------

#: Worker A imports [01-05, 01-07), worker B [01-06, 01-08): they share interval 01-06, A's second.
WINDOW_A, WINDOW_B = ("2024-01-05", "2024-01-07"), ("2024-01-06", "2024-01-08")

#: The checkpoints A passes when nothing interferes, in order (each interval: batch loaded, copied,
#: [Incremental: published], recorded; Overwrite: then the snapshot publish). A pause at the nth
#: occurrence of a name has passed exactly the prefix up to it (checked against kill_at's signal file).
A_CHECKPOINTS = {
    "Overwrite": ["import.listed",
                  "load.batch_loaded", "load.copied", "import.recorded",  # 01-05
                  "load.batch_loaded", "load.copied", "import.recorded",  # 01-06
                  "import.before_publish", "publish.copied", "publish.before_labels", "import.published"],
    "Incremental": ["import.listed",
                    "load.batch_loaded", "load.copied", "import.published", "import.recorded",  # 01-05
                    "load.batch_loaded", "load.copied", "import.published", "import.recorded"],  # 01-06
}

# Statuses: A's 01-05 and B's 01-07 are theirs alone, always "loaded"; only 01-06 depends on the interleaving.
LOADED, UNCHANGED = "loaded", "unchanged"

#: (id, pause point, nth, A's 01-06 status, B's 01-06 status, (worker, a line of its log that shows the path taken)).
#: Left out as equivalent to a case here: load.copied#1 / import.recorded#1 / import.published#1 (A paused in
#: 01-05 after reading the ledger: for 01-06 the same as load.batch_loaded#1, and B never touches 01-05);
#: Incremental import.published#2 (B sees what it sees at load.copied#2 — A's pending load, copied, unrecorded —
#: and takes the same path; only the order of the two identical MERGEs of 01-06 differs); Overwrite
#: import.published#1 (A published 01-06 completely before B started: a serial run plus A's re-check finding
#: 01-07 published, which every other Overwrite case already does).
LOAD_CASES = [
    # A paused before it read the ledger: it reads B's record of 01-06, same generations and settings
    ("listed", "import.listed", 1,
     UNCHANGED,  # A: B recorded 01-06 before A's ledger read: skipped
     LOADED,     # B: first to touch 01-06
     ("A", "Interval 20240106 already holds these 2 object generations: load skipped")),
    # A read the ledger (01-06 unknown, no pending load) and is in 01-05's load: its view of 01-06 is stale
    ("stale-ledger", "load.batch_loaded", 1,
     UNCHANGED,  # A: planned 01-06 from no record = B's copy id; B's finished copy (read B's staging) is found
                 # before any load, nothing recorded for it, the interval is decided again: B's record, skipped
     LOADED,     # B: first to touch 01-06
     ("A", "Interval 20240106: reattached to job 1/1")),  # B's copy, found before any load of A's
    # A loaded 01-06 into its staging table; its pending load and copy come after B finished
    ("same-copy-id", "load.batch_loaded", 2,
     UNCHANGED,  # A: its copy id is B's, which succeeded: reattached, the copy read B's staging, so A drops its
                 # pending load and decides again: B's record, skipped
     LOADED,     # B: A had written nothing to the ledger yet: an ordinary load
     ("A", "Interval 20240106: another attempt's copy")),  # at A's copy (the signal file: after A's batch)
    # A's copy wrote raw 01-06 (its pending load says what it holds); not recorded yet
    ("pending-load", "load.copied", 2,
     LOADED,     # A: its own copy wrote the raw table: it records (the same entries B recorded) and reports it
     LOADED,     # B: found A's pending load whose copy reached the raw table, recorded (Incremental: published)
                 # it: a load this run recorded
     ("B", "reached the raw table without its ledger write; recording it now")),
    # A recorded 01-06 but has not dropped its pending load yet
    ("recorded", "import.recorded", 2,
     LOADED,     # A: loaded and recorded it
     UNCHANGED,  # B: A's record, same generations: skipped; A's leftover pending load was planned from no
                 # record (not the current one) so B drops it as stale, and records nothing
     ("B", "Interval 20240106 already holds these 2 object generations: load skipped")),
]
#: Overwrite only: A loaded and recorded 01-05 and 01-06 and is publishing 01-06 (the newest it knows).
PUBLISH_CASES = [
    # A paused before its copy of 01-06 over the clean table: B publishes 01-07 first, then A copies 01-06
    # over B's 01-07 snapshot (labels it: nothing changed between A's copy and its labels) and must check again
    ("publish-over-newer", "import.before_publish", 1,
     LOADED,     # A: loaded and recorded it before the pause
     UNCHANGED,  # B: A's record, same generations: skipped
     ("A", "Publishing interval 20240107 to")),
    # A copied 01-06 over the clean table, its ETag-conditional labels not yet written: B publishes 01-07 over
    # it, A's labels get 412 (the table changed since A's copy), and A's re-check finds 01-07 published
    ("labels-after-newer", "publish.before_labels", 1,
     LOADED,     # A: loaded and recorded it before the pause
     UNCHANGED,  # B: A's record, same generations: skipped
     ("A", "changed after this run's copy of interval 20240106")),
]
TWO_WORKER_CASES = [
    *(pytest.param("Overwrite", *case[1:], id=f"Overwrite-{case[0]}") for case in [*LOAD_CASES, *PUBLISH_CASES]),
    *(pytest.param("Incremental", *case[1:], id=f"Incremental-{case[0]}") for case in LOAD_CASES),
]

#: comparable() of one uninterrupted run over the union window, per mode (content only: the same for every case).
_UNION_RUN: dict[str, tuple] = {}


@pytest.mark.parametrize(("mode", "point", "nth", "a_0106", "b_0106", "evidence"), TWO_WORKER_CASES)
def test_two_workers_on_overlapping_ranges_at_once(mode, point, nth, a_0106, b_0106, evidence, pair, gcs_client,
                                                   bq_client, tmp_path):
    """Two real worker processes on overlapping windows ([01-05, 01-07) and [01-06, 01-08)), interleaved
    exactly: A (under ``kill_at --pause-at``) stops at ``point`` (its ``nth`` time), B runs to completion,
    then A goes on. Both succeed with the statuses the path implies, no row twice, no pending load left,
    and the end state equals one uninterrupted run of the union (Overwrite: the 01-07 snapshot)."""
    import json
    import os
    import subprocess
    import sys
    import time

    from tests.emulators.worker_helpers import REPO
    from worker.ledger import Ledger
    from worker.publishing import published_snapshot

    (spec, bucket), (ref_spec, ref_bucket) = pair(mode)
    # one interval after another: the exact interleavings below follow A's intervals in sequence
    spec = type(spec).from_dict({**spec.to_dict(), "max_concurrent_intervals": 1})
    days = [*DAYS, day(7)]
    for s, seeded in ((spec, bucket), (ref_spec, ref_bucket)) if mode not in _UNION_RUN else ((spec, bucket),):
        drop(seeded, f"{s.path_base}/2024-01-07/part0.parquet", score_rows(interval_start=day(7), count=3, seed=9))
    if mode not in _UNION_RUN:  # computed once per mode (comparable() is content only), not once per case
        import_window(ref_spec, gcs_client, bq_client, day(5), day(8))
        _UNION_RUN[mode] = comparable(end_state(ref_spec, bq_client, ref_bucket, days=days))

    path = str(write_spec(tmp_path, spec))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_PIPES_CONTEXT"}
    a_paused, a_release, b_listed = tmp_path / "a.paused", tmp_path / "a.release", tmp_path / "b.listed"

    def start(name: str, window: tuple[str, str], pause: list[str]) -> subprocess.Popen:
        with (tmp_path / f"{name}.stdout").open("w") as out, (tmp_path / f"{name}.stderr").open("w") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.faults.kill_at", *pause, "--pause-timeout", "300", "--", "import",
                 "--spec", path, "--start", window[0], "--end", window[1]],
                cwd=REPO, env=env, stdout=out, stderr=err, text=True)

    def stderr(name: str) -> str:
        return (tmp_path / f"{name}.stderr").read_text()

    a = start("A", WINDOW_A, ["--pause-at", point, "--nth", str(nth), "--signal-file", str(a_paused),
                              "--release-file", str(a_release)])
    # B starts now too (its interpreter start-up overlaps A's run) but holds after listing the bucket, which no
    # one changes, until A is paused: every BigQuery read and write of B comes after A stopped at the point.
    b = start("B", WINDOW_B, ["--pause-at", "import.listed", "--signal-file", str(b_listed),
                              "--release-file", str(a_paused)])
    try:
        deadline = time.monotonic() + 120
        while not a_paused.exists():  # the fault fired: A is paused at the point
            for name, proc in (("A", a), ("B", b)):
                assert proc.poll() is None, f"{name} ended (exit {proc.returncode}) before A paused: {stderr(name)[-2000:]}"
            assert time.monotonic() < deadline, f"A did not reach {point} in 120 s: {stderr('A')[-2000:]}"
            time.sleep(0.05)
        sequence = A_CHECKPOINTS[mode]
        at = [i for i, name in enumerate(sequence) if name == point][nth - 1]
        assert a_paused.read_text().split() == sequence[: at + 1], f"A paused elsewhere than {point}#{nth}"

        b.wait(timeout=180)  # B runs to completion while A is paused
        assert b_listed.read_text().split() == ["import.listed"], "B did not hold before its first BigQuery call"
        assert a.poll() is None, "A went on before B finished"
        a_release.touch()
        a.wait(timeout=180)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outcome = {name: (proc.returncode, (tmp_path / f"{name}.stdout").read_text(), stderr(name))
               for name, proc in (("A", a), ("B", b))}
    assert {w: rc for w, (rc, _, _) in outcome.items()} == {"A": 0, "B": 0}, \
        {w: err[-2000:] for w, (_, _, err) in outcome.items()}

    reports = {w: json.loads(out) for w, (_, out, _) in outcome.items()}
    assert {w: {i["interval"]: i["status"] for i in r["intervals"]} for w, r in reports.items()} == {
        "A": {"20240105": LOADED, "20240106": a_0106},  # 01-05: A's alone
        "B": {"20240106": b_0106, "20240107": LOADED},  # 01-07: B's alone
    }
    worker, line = evidence
    assert line in outcome[worker][2], f"{worker} did not take the {point}#{nth} path: {outcome[worker][2][-3000:]}"

    got = end_state(spec, bq_client, bucket, days=days)
    assert comparable(got) == _UNION_RUN[mode], f"paused at {point}#{nth}: {got.describe()}"
    # (each raw table equals the union run's by count and checksum, so none holds a row twice either)
    assert duplicate_rows(bq_client, spec.clean_table_id) == 0
    assert Ledger(bq_client, spec).pending_loads.read(start=day(5), end=day(8)) == {}, "no pending load is left behind"
    if mode == "Overwrite":  # the newest interval's snapshot, labelled so, whichever worker published last
        assert published_snapshot(bq_client, spec)[0] == "20240107"
        assert (got.clean_rows, got.clean_checksum) == got.raw["20240107"]
        assert [r["metadata"]["published_interval"] for r in reports.values()] == ["20240107", "20240107"]
