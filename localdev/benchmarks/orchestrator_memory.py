"""Dagster process memory against files per interval: the project's asset vs an in-process peer.

Each materialization runs in a fresh Dagster process (``dagster_process``) that reports its own
peak RSS (``VmHWM``): the project's asset launches the worker as a child process, so the
listing and the load job's file list never enter the Dagster process; the peer (what a
hand-written asset does) lists, matches and loads from inside it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

from localdev.benchmarks.context import Bench, run_measured
from localdev.benchmarks.results import Figure, GoalIs
from localdev.benchmarks.worker_memory import one_row_csv_spec, seed_interval

FULL_COUNTS = (10, 10_000)
QUICK_COUNTS = (10, 1_000)
_FIRST_DAY = datetime(2024, 4, 1, tzinfo=UTC)


def dagster_run(bench: Bench, *, asset: str, spec_fields: dict, windows: list[list[str]], launcher: dict | None = None) -> dict:
    """Run ``dagster_process`` for ``windows`` (one run each) and return its JSON report."""
    args = {"asset": asset, "spec": spec_fields, "windows": windows, "launcher": launcher or {}}
    run = run_measured([sys.executable, "-m", "localdev.benchmarks.dagster_process", json.dumps(args)], env=bench.env)
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(bench: Bench) -> list[Figure]:
    counts = QUICK_COUNTS if bench.quick else FULL_COUNTS
    bucket = bench.new_bucket("bench-orchestrator-memory").name
    spec = one_row_csv_spec(name="orchestrator_memory", bucket=bucket)
    fields = {**spec.to_dict(), "start_date": f"{_FIRST_DAY:%Y-%m-%d}"}
    rss: dict[tuple[str, int], float] = {}
    for position, files in enumerate(counts):
        day = _FIRST_DAY + timedelta(days=position)
        seed_interval(bench, bucket=bucket, day=day, files=files)
        for asset in ("import", "peer"):
            report = dagster_run(bench, asset=asset, spec_fields=fields, windows=[[f"{day:%Y-%m-%d}"] * 2])
            rss[(asset, files)] = report["peak_rss_mib"]
            print(f"  Dagster process, {asset:>6} asset, {files:>6} files: peak RSS {report['peak_rss_mib']:.0f} MiB, "
                  f"{report['wall_seconds']:.1f} s", flush=True)
    small, large = counts[0], counts[-1]
    bench.plot_data["orchestrator_rss"] = {asset: {n: rss[(asset, n)] for n in counts} for asset in ("import", "peer")}
    figures = [Figure(id=f"orchestrator_peak_rss_mib_{n}_files" if asset == "import" else f"inprocess_peer_peak_rss_mib_{n}_files",
                      value=round(rss[(asset, n)], 1), unit="MiB",
                      how=f"peak RSS (VmHWM) of the Dagster process materializing one interval of {n:,} files with "
                          + ("the project's asset (worker in a subprocess)" if asset == "import" else "an in-process peer asset"))
               for asset in ("import", "peer") for n in counts]
    figures.append(Figure(
        id=f"orchestrator_peak_rss_ratio_{large}_vs_{small}_files", value=round(rss[("import", large)] / rss[("import", small)], 3),
        unit="ratio", goal=1.05, goal_is=GoalIs.MAX,
        how=f"the Dagster process's peak RSS for {large:,} files over {small:,} files, the project's asset, same run"))
    figures.append(Figure(
        id=f"inprocess_peer_peak_rss_ratio_{large}_vs_{small}_files", value=round(rss[("peer", large)] / rss[("peer", small)], 3),
        unit="ratio", how="the same for an in-process peer asset that lists, matches and loads inside Dagster"))
    return figures
