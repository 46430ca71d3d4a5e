"""Throughput of a backfill: daily partitions with one file each, as one run and as several runs.

A single-run backfill is one run over the whole partition range (one worker for all intervals);
a multi-run backfill is what Dagster's backfill daemon submits for ``BackfillPolicy.multi_run(30)``
(the project's default): consecutive ranges of 30 partitions, one run each, here one after the
other in one Dagster process (so without the run launcher's per-run cost, a process or a pod
per run). Each policy imports its own copy of the intervals, so both do the same first-load work.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from localdev.benchmarks.context import Bench
from localdev.benchmarks.orchestrator_memory import dagster_run
from localdev.benchmarks.results import Figure
from localdev.benchmarks.seeding import seed_objects
from localdev.benchmarks.worker_memory import one_row_csv_spec

_FIRST_DAY = datetime(2023, 1, 1, tzinfo=UTC)
MAX_PARTITIONS_PER_RUN = 30


def _windows(keys: list[str], per_run: int | None) -> list[list[str]]:
    if per_run is None:
        return [[keys[0], keys[-1]]]
    return [[chunk[0], chunk[-1]] for chunk in (keys[i:i + per_run] for i in range(0, len(keys), per_run))]


def measure(bench: Bench) -> list[Figure]:
    sizes = (10,) if bench.quick else (10, 100)
    figures: list[Figure] = []
    per_interval: dict[tuple[str, int], float] = {}
    for days in sizes:
        for policy, per_run in (("single_run", None), ("multi_run", MAX_PARTITIONS_PER_RUN)):
            bucket = bench.new_bucket(f"bench-backfill-{policy.replace('_', '-')}-{days}").name
            keys = [f"{_FIRST_DAY + timedelta(days=i):%Y-%m-%d}" for i in range(days)]
            seed_objects(bench.svc.gcs_root, bucket, ((f"drops/{key}/part-000000.csv", b"v\nx\n") for key in keys))
            spec = one_row_csv_spec(name=f"backfill_{policy}_{days}", bucket=bucket)
            fields = {**spec.to_dict(), "start_date": keys[0], "max_partitions_per_run": per_run}
            report = dagster_run(bench, asset="import", spec_fields=fields, windows=_windows(keys, per_run))
            steps = sum(r["step_seconds"] for r in report["runs"])
            per_interval[(policy, days)] = steps / days
            print(f"  backfill, {days} days, {policy}: {len(report['runs'])} runs, {steps:.1f} s of steps, "
                  f"{steps / days:.2f} s per interval", flush=True)
            figures.append(Figure(id=f"backfill_seconds_per_interval_{days}_days_{policy}", value=round(steps / days, 3),
                                  unit="s", how=f"step time per interval of a {days}-partition backfill, {policy.replace('_', '-')} "
                                                f"({len(report['runs'])} run(s)), one file per interval"))
    largest = sizes[-1]
    figures.append(Figure(id=f"backfill_seconds_per_interval_{largest}_days", value=round(per_interval[("multi_run", largest)], 3),
                          unit="s", how=f"the same for the project's default policy (multi-run, {MAX_PARTITIONS_PER_RUN} "
                                        f"partitions a run), {largest} days"))
    if len(sizes) > 1:
        figures.append(Figure(
            id="backfill_per_interval_scaling_100_vs_10_days", unit="ratio",
            value=round(per_interval[("single_run", 100)] / per_interval[("single_run", 10)], 3),
            how="single-run seconds per interval with 100 partitions over that with 10 (1.0: linear in the partitions)"))
    return figures
