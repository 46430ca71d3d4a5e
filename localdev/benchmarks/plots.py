"""PNG plots of the series the measurements left in ``Bench.plot_data`` (matplotlib, no screen)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(plot_data: dict, *, out_dir: Path) -> list[Path]:
    """Write every plot whose data is there; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if rss := plot_data.get("orchestrator_rss"):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for asset, label in (("import", "this project's asset (worker in a subprocess)"), ("peer", "in-process peer asset")):
            files = sorted(rss[asset])
            ax.plot(files, [rss[asset][n] for n in files], marker="o", label=label)
        if worker := plot_data.get("worker_rss"):
            files = sorted(worker)
            ax.plot(files, [worker[n] for n in files], marker="s", linestyle="--", label="the worker process")
        ax.set_xscale("log")
        ax.set_xlabel("files in the interval")
        ax.set_ylabel("peak RSS (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title("Peak memory against files per interval")
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "orchestrator_rss_vs_files.png"))
    if sensor := plot_data.get("sensor_requests"):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(sensor["sizes"], sensor["quiet"], marker="o", label="new-files sensor, quiet tick")
        ax.plot(sensor["sizes"], sensor["bare"], marker="s", linestyle="--", label="listing the whole prefix")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("objects in the bucket (100 per daily interval)")
        ax.set_ylabel("GCS requests per tick")
        ax.set_title("Sensor cost against bucket size")
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "sensor_requests_vs_bucket_size.png"))
    if jobs := plot_data.get("jobs_per_interval"):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(jobs["files"], jobs["ours"], marker="o", label="this project's worker (load + copy jobs)")
        measured = {int(k): v for k, v in jobs["per_file_measured"].items()}
        ax.plot(jobs["files"], jobs["files"], linestyle=":", color="grey", label="one load job per file (N)")
        ax.plot(sorted(measured), [measured[n] for n in sorted(measured)], marker="s", linestyle="none",
                color="grey", label="per-file loader, measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("files in the interval")
        ax.set_ylabel("BigQuery jobs per interval")
        ax.set_title("BigQuery jobs against files per interval")
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "bigquery_jobs_vs_files.png"))
    return written
