"""What every measurement shares: the running emulators, clients, a work folder, the mode."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from google.cloud import bigquery, storage

from localdev.services import LocalServices
from worker.spec import ImportSpec


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
    """A child process's peak RSS (MiB, of exactly that process), wall seconds and stdout."""

    peak_rss_mib: float
    seconds: float
    stdout: str


def run_measured(command: list[str], *, env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run ``command`` and measure it with ``wait4`` (the peak RSS is the child's own, not its children's).

    Raises:
        RuntimeError: the command failed (with the tail of its stderr).
    """
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ... exited with {code}: {err.read()[-3000:]}")
        return Measured(peak_rss_mib=usage.ru_maxrss / 1024, seconds=seconds, stdout=out.read())
