"""What launching the worker through Dagster Pipes costs over running it directly.

The same interval (10 one-row files, already loaded, so every run does the same work: list,
read the ledger, skip) is imported by ``python -m worker import`` directly and by the project's
asset in a Dagster process (``dagster_process``) with the subprocess launcher, the subprocess
launcher over the GCS message channel, and the Docker launcher (when an engine and the worker
image are there). From each run's event log: seconds from the step's start to the worker's
first Pipes message ("Listing gs://...") and the step's duration. Medians of several runs.
"""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime

from localdev.benchmarks.context import Bench, run_measured, worker_import_command
from localdev.benchmarks.orchestrator_memory import dagster_run
from localdev.benchmarks.results import Figure
from localdev.benchmarks.worker_memory import one_row_csv_spec, seed_interval

_DAY = datetime(2024, 7, 1, tzinfo=UTC)


def docker_image() -> str | None:
    """The worker image when a Docker engine is reachable and holds it, else ``None``."""
    try:
        import docker

        from orchestrator.launchers.settings import DEFAULT_WORKER_IMAGE

        engine = docker.from_env()
        image = os.environ.get("WORKER_IMAGE", DEFAULT_WORKER_IMAGE)
        engine.images.get(image)
        return image
    except Exception:  # no engine, no image: the Docker figures are left out (said in the notes)
        return None


def measure(bench: Bench) -> list[Figure]:
    repeats = 3 if bench.quick else 5
    bucket = bench.new_bucket("bench-launch").name
    pipes_bucket = bench.new_bucket("bench-launch-pipes").name
    spec = one_row_csv_spec(name="launch_overhead", bucket=bucket)
    spec_path = bench.write_spec(spec)
    seed_interval(bench, bucket=bucket, day=_DAY, files=10)
    command = worker_import_command(spec_path, _DAY)
    run_measured(command, env=bench.env)  # the first run loads; the measured ones skip
    direct = statistics.median(run_measured(command, env=bench.env).seconds for _ in range(repeats))
    fields = {**spec.to_dict(), "start_date": f"{_DAY:%Y-%m-%d}"}
    key = f"{_DAY:%Y-%m-%d}"
    launchers: dict[str, dict] = {
        "subprocess": {},
        # the channel's defaults (5 s between the worker's chunk uploads and between the reader's polls)
        "subprocess_gcs_channel": {"message_channel": "gcs",
                                   "pipes_gcs": {"bucket": pipes_bucket, "prefix": "pipes", "project": "test-project"}},
    }
    image = docker_image()
    if image:
        launchers["docker"] = {"kind": "docker", "docker": {"image": image, "network": "host"}}
    else:
        bench.notes.append("No Docker engine with the worker image was reachable: the Docker launch figures are missing "
                           "(`bash scripts/docker-up.sh` starts one and builds the image).")
    # the baseline of a launcher: the same worker run directly where that launcher runs it
    baselines = {"subprocess": direct, "subprocess_gcs_channel": direct}
    figures = [Figure(id="worker_direct_seconds", value=round(direct, 3), unit="s",
                      how=f"median wall time of `python -m worker import` on an unchanged interval of 10 files ({repeats} runs)")]
    if image:
        docker_command = ["docker", "run", "--rm", "--network", "host", "-v", f"{spec_path}:/bench/spec.json:ro",
                          *(arg for key, value in bench.svc.env().items() for arg in ("-e", f"{key}={value}")),
                          image, "import", "--spec", "/bench/spec.json", "--start", f"{_DAY:%Y-%m-%d}"]
        baselines["docker"] = statistics.median(run_measured(docker_command, env=bench.env).seconds for _ in range(repeats))
        figures.append(Figure(id="worker_docker_run_seconds", value=round(baselines["docker"], 3), unit="s",
                              how="median wall time of `docker run` of the worker image on the same interval, by hand"))
    for name, launcher in launchers.items():
        report = dagster_run(bench, asset="import", spec_fields=fields, windows=[[key, key]] * (repeats + 1), launcher=launcher)
        runs = report["runs"][1:]  # the first run warms the process up (imports, instance)
        step = statistics.median(r["step_seconds"] for r in runs)
        first = statistics.median(r["to_first_message_seconds"] for r in runs)
        base = baselines[name]
        print(f"  launch, {name}: first Pipes message after {first:.2f} s, step {step:.2f} s, run directly {base:.2f} s",
              flush=True)
        figures += [
            Figure(id=f"{name}_first_message_seconds", value=round(first, 3), unit="s",
                   how=f"median seconds from the step's start to the worker's first Pipes message, {name} launcher"
                       + (" (mostly the channel's 5 s chunk interval, its default)" if "gcs" in name else "")),
            Figure(id=f"{name}_launch_overhead_seconds", value=round(step - base, 3), unit="s",
                   how=f"median step duration through Dagster Pipes ({name}) minus the worker run directly "
                       + ("with `docker run` (below 0: the launcher's Docker SDK calls start it faster than the CLI)"
                          if name == "docker" else "as a subprocess")),
        ]
        if name == "subprocess":
            figures.append(Figure(id="subprocess_launch_overhead_ratio", value=round(step / direct, 3), unit="ratio",
                                  how="median step duration through Dagster Pipes (subprocess) over the worker run directly"))
    return figures
