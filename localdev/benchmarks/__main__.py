"""``python -m localdev.benchmarks [--quick] [--out DIR] [--only NAME ...] [--merge-into RESULTS_JSON]``.

Starts fake-gcs-server (it pages like GCS) and bqemulator (and, for ``event_latency``, the Pub/Sub emulator
that fake-gcs-server publishes Cloud Storage notifications to), runs each measurement module in
turn and writes ``results.json``, ``results.md`` and the PNG plots into ``--out`` (default
``docs/benchmarks``). ``--quick`` measures at small sizes (CI runs it so the code cannot rot;
its figures are not the published ones). ``--merge-into`` updates an earlier results.json of
the same mode in place (its folder is the output): the figures of the modules run now replace
theirs, the others stay. Exits 1 when a measurement fails, and 2 when a figure misses its goal:
every goal in full mode, in quick mode only the goals of
:data:`localdev.benchmarks.results.ENFORCED_IN_QUICK` (the others are printed as not enforced).
The results are written either way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from localdev.benchmarks.context import Bench
from localdev.benchmarks.plots import write_plots
from localdev.benchmarks.results import Figure, ModuleRun, current_commit, enforced, missed_goals, write_results
from localdev.services import run_local_services
from worker.bigquery_client import bigquery_client
from worker.core.gcs import storage_client

MODULES = ("worker_memory", "orchestrator_memory", "planning_cost", "sensor_cost", "bigquery_writes",
           "retention_requests", "launch_overhead", "backfill_throughput", "cloud_latency", "event_latency")
#: Modules that need fake-gcs-server publishing Cloud Storage notifications (the Pub/Sub emulator is started for them).
NEEDS_NOTIFICATIONS = frozenset({"event_latency"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI); the figures are not the published ones")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="where results and plots go")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these measurements")
    parser.add_argument("--merge-into", type=Path, metavar="RESULTS_JSON",
                        help="update this results.json in place (same mode): replace the figures of the modules run, "
                             "keep the others; writes into its folder, not --out")
    args = parser.parse_args(argv)
    if args.merge_into is not None and not args.merge_into.is_file():
        parser.error(f"--merge-into {args.merge_into}: no such file (run without it to write a new one)")
    out_dir = args.merge_into.parent if args.merge_into is not None else args.out
    figures: list[Figure] = []
    runs: dict[str, ModuleRun] = {}
    commit = current_commit()
    started = time.monotonic()
    notifications = bool(NEEDS_NOTIFICATIONS & set(args.only or MODULES))
    with tempfile.TemporaryDirectory(prefix="gcs-import-bench-") as workdir, \
            run_local_services(workdir=Path(workdir) / "emulators", gcs_server="fake-gcs-server",
                               notifications=notifications) as svc:
        os.environ.update(svc.env())
        bench = Bench(svc=svc, gcs=storage_client(project_id=svc.project_id), bq=bigquery_client(project_id=svc.project_id),
                      workdir=Path(workdir), quick=args.quick)
        for name in args.only or MODULES:
            print(f"{name} ...", flush=True)
            module_started = time.monotonic()
            notes_before = len(bench.notes)
            try:
                produced = importlib.import_module(f"localdev.benchmarks.{name}").measure(bench)
            except Exception as exc:
                print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            seen = {f.id for f in figures}
            clash = [f.id for f in produced if f.id in seen]
            if clash:
                print(f"benchmark {name} repeats figure ids {clash}", file=sys.stderr)
                return 1
            figures += produced
            seconds = time.monotonic() - module_started
            runs[name] = ModuleRun(commit=commit, seconds=round(seconds), figures=[f.id for f in produced],
                                   notes=bench.notes[notes_before:])
            print(f"{name}: {len(produced)} figures in {seconds:.0f} s", flush=True)
        run_notes = [f"The whole run took {time.monotonic() - started:.0f} s."]
        json_path, md_path = write_results(figures, out_dir=out_dir, quick=args.quick, notes=run_notes, runs=runs,
                                           merge_into=args.merge_into)
        plots = write_plots(bench.plot_data, out_dir=out_dir)
    width = max(len(f.id) for f in figures)
    for f in figures:
        mark = {True: "ok", False: "GOAL NOT MET" if enforced(f, quick=args.quick) else "goal not met (not enforced "
                "in quick mode: not the goal's size)", None: ""}[f.met]
        print(f"  {f.id:<{width}}  {f.value:>14,.3f} {f.unit:<10} {mark}")
    print(f"wrote {json_path}, {md_path}" + "".join(f", {p}" for p in plots))
    missed = missed_goals(figures, quick=args.quick)
    if missed:
        print(f"{len(missed)} goal(s) not met: " + ", ".join(f"{f.id} = {f.value:g} (goal {f.goal_is.value} {f.goal:g})"
                                                             for f in missed if f.goal_is), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
