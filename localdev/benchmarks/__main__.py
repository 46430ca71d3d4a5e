"""``python -m localdev.benchmarks [--quick] [--out DIR] [--only NAME ...]``: run the suite, write the results.

Starts fake-gcs-server (it pages like GCS) and bqemulator, runs each measurement module in
turn and writes ``results.json``, ``results.md`` and the PNG plots into ``--out`` (default
``docs/benchmarks``). ``--quick`` measures at small sizes (CI runs it so the code cannot rot;
its figures are not the published ones). Exits non-zero when a measurement fails; a goal that
is not met is reported (``met: no``), not an error.
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
from localdev.benchmarks.results import Figure, write_results
from localdev.services import run_local_services
from worker.bigquery_client import bigquery_client
from worker.core.gcs import storage_client

MODULES = ("worker_memory", "orchestrator_memory", "planning_cost", "sensor_cost", "bigquery_writes",
           "retention_requests", "launch_overhead", "backfill_throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI); the figures are not the published ones")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="where results and plots go")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these measurements")
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gcs-import-bench-") as workdir, \
            run_local_services(workdir=Path(workdir) / "emulators", gcs_server="fake-gcs-server") as svc:
        os.environ.update(svc.env())
        bench = Bench(svc=svc, gcs=storage_client(project_id=svc.project_id), bq=bigquery_client(project_id=svc.project_id),
                      workdir=Path(workdir), quick=args.quick)
        for name in args.only or MODULES:
            print(f"{name} ...", flush=True)
            module_started = time.monotonic()
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
            print(f"{name}: {len(produced)} figures in {time.monotonic() - module_started:.0f} s", flush=True)
        bench.notes.append(f"The whole run took {time.monotonic() - started:.0f} s.")
        json_path, md_path = write_results(figures, out_dir=args.out, quick=args.quick, notes=bench.notes)
        plots = write_plots(bench.plot_data, out_dir=args.out)
    width = max(len(f.id) for f in figures)
    for f in figures:
        mark = {True: "ok", False: "GOAL NOT MET", None: ""}[f.met]
        print(f"  {f.id:<{width}}  {f.value:>14,.3f} {f.unit:<10} {mark}")
    print(f"wrote {json_path}, {md_path}" + "".join(f", {p}" for p in plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
