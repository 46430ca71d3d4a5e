"""What every measurement shares: the running emulators, clients, a work folder, the mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from google.cloud import bigquery, storage

from localdev.services import LocalServices
from worker.core.spec import ImportSpec


@dataclass
class Bench:
    """One benchmark run: the emulators (``svc``), their clients and the run's settings."""

    svc: LocalServices
    gcs: storage.Client
    bq: bigquery.Client
    workdir: Path
    quick: bool
    notes: list[str] = field(default_factory=list)
    #: series for the plots, by plot name
    plot_data: dict = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment a worker or a Dagster process gets: this one, pointed at the emulators."""
        return {**os.environ, **self.svc.env()}

    def new_bucket(self, name: str) -> storage.Bucket:
        return self.gcs.create_bucket(name)

    def write_spec(self, spec: ImportSpec) -> Path:
        path = self.workdir / f"{spec.name}.spec.json"
        path.write_text(json.dumps(spec.to_dict()))
        return path


@dataclass(frozen=True)
class Measured:
    """A child process's wall seconds and stdout, and its own peak RSS in MiB when it was measured."""

    seconds: float
    stdout: str
    peak_rss_mib: float | None = None


def run_measured(command: list[str], *, env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``command``; return its wall time and stdout.

    A ``python -m MODULE ...`` command runs under :mod:`localdev.benchmarks.peak_rss`, which
    reports the process's own peak RSS (``VmHWM``).

    Raises:
        RuntimeError: the command failed (with the tail of its stderr).
    """
    from localdev.benchmarks.peak_rss import MARKER

    if len(command) > 2 and command[1] == "-m":
        command = [command[0], "-m", "localdev.benchmarks.peak_rss", *command[2:]]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run(command, env=env, stdout=out, stderr=err, text=True, cwd=cwd, check=False).returncode
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        if code != 0:
            raise RuntimeError(f"{' '.join(command[:5])} ... exited with {code}: {stderr[-3000:]}")
        peaks = [float(line[len(MARKER):]) for line in stderr.splitlines() if line.startswith(MARKER)]
        return Measured(seconds=seconds, stdout=out.read(), peak_rss_mib=peaks[-1] if peaks else None)


def worker_import_command(spec_path: Path, day: datetime) -> list[str]:
    """``python -m worker import`` of the interval starting on ``day`` (the worker run directly)."""
    return [sys.executable, "-m", "worker", "import", "--spec", str(spec_path), "--start", f"{day:%Y-%m-%d}"]


def proxied_env(bench: Bench, *, gcs_endpoint: str | None = None, bigquery_endpoint: str | None = None) -> dict[str, str]:
    """``bench.env`` with the GCS and/or BigQuery endpoint replaced (by a counting proxy's)."""
    env = bench.env
    if gcs_endpoint:
        env["STORAGE_EMULATOR_HOST"] = gcs_endpoint
    if bigquery_endpoint:
        env["BIGQUERY_EMULATOR_HOST"] = bigquery_endpoint
    return env
