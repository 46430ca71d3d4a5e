"""The worker's planning cost: list + match + plan against a bare listing of the same prefix.

Both run in this process with the same client (``worker.core.gcs.storage_client``) against the
same fake-gcs-server prefix, asking for the same fields, alternating which goes first, median of
several runs: the bare listing only walks the pages; the worker's path is ``worker.core.gcs.list_objects`` (names, generations, sizes) ->
``match_objects`` -> ``decide_interval`` -> ``plan_interval_load`` (the load jobs' URI batches).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from localdev.benchmarks.context import Bench
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.worker_memory import one_row_csv_spec, seed_interval
from worker.core.gcs import LIST_FIELDS, list_objects, storage_client
from worker.core.matching import match_objects
from worker.planning import IntervalAction, decide_interval, plan_interval_load

_DAY = datetime(2024, 5, 1, tzinfo=UTC)


def measure(bench: Bench) -> list[Figure]:
    files = 1_000 if bench.quick else 10_000
    repeats = 3 if bench.quick else 5
    bucket = bench.new_bucket("bench-planning").name
    spec = one_row_csv_spec(name="planning", bucket=bucket)
    seed_interval(bench, bucket=bucket, day=_DAY, files=files)
    client = storage_client(project_id=spec.project_id)

    def bare() -> int:
        return sum(1 for _ in client.list_blobs(bucket, prefix=spec.object_prefix, page_size=1000, fields=LIST_FIELDS))

    def planned() -> int:
        matched = match_objects(spec, list_objects(client, spec), intervals=[_DAY])
        objects = matched.by_interval[_DAY]
        decision = decide_interval(spec, interval_start=_DAY, listed=objects, recorded=None)
        assert decision.action is IntervalAction.LOAD, decision
        plan = plan_interval_load(spec, interval_start=_DAY, objects=objects)
        return sum(len(batch) for batch in plan.batches)

    bare_times, planned_times = [], []
    for repeat in range(repeats):
        pair = ((bare, bare_times), (planned, planned_times))
        for run, times in pair if repeat % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            count = run()
            times.append(time.perf_counter() - started)
            if count != files:
                raise RuntimeError(f"expected {files} objects, got {count}")
    t_bare, t_planned = statistics.median(bare_times), statistics.median(planned_times)
    print(f"  planning, {files} files: bare listing {t_bare:.2f} s, list + match + plan {t_planned:.2f} s (medians of {repeats})",
          flush=True)
    return [
        Figure(id="planning_vs_bare_listing_time_ratio", value=round(t_planned / t_bare, 3), unit="ratio", goal=1.2,
               goal_is=GoalIs.MAX,
               how=f"median time of the worker's list + match + plan over a bare listing of the same {files:,} objects, "
                   "same client, interleaved"),
        Figure(id=f"planning_seconds_over_bare_listing_{files}_files", value=round(t_planned - t_bare, 3), unit="s",
               how="what matching and planning add to the listing, in seconds"),
    ]
