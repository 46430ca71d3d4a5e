"""The local demo: emulators, sample drops, the example asset materialized through the subprocess worker.

    python -m localdev.demo            # run it once and print what came back
    python -m localdev.demo --serve    # the same, then keep the emulators up and run `dagster dev`

Everything stays under ``.local/`` (git-ignored): the Dagster instance in
``.local/dagster_home`` (so ``dagster dev`` shows the demo's runs) and the
emulators' files in ``.local/emulators``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCAL = REPO / ".local"
DAGSTER_HOME = LOCAL / "dagster_home"
EMULATOR_DIR = LOCAL / "emulators"
DAYS = 4
ROWS_PER_DAY = (3, 5, 4, 6)


def _demo_days() -> list[datetime]:
    from localdev.demo_definitions import demo_attributes

    first = datetime.fromisoformat(demo_attributes()["start_date"]).replace(tzinfo=UTC)
    return [first + timedelta(days=i) for i in range(DAYS)]


def _print_metadata(title: str, result: Any) -> None:
    import dagster as dg

    print(f"\n== {title}: run {result.run_id} {'succeeded' if result.success else 'FAILED'}")
    mats = [event.event_specific_data.materialization for event in result.get_asset_materialization_events()]
    if not mats:
        return
    # a range run reports one MaterializeResult; Dagster records it once per partition, and each
    # partition carries its own interval's figures (rows, files, status)
    print(f"materialization {mats[0].asset_key.to_user_string()} partitions={[m.partition for m in mats]}")
    for mat in mats:
        own = {k: mat.metadata[k].value for k in ("dagster/partition_row_count", "files_loaded", "interval_status")
               if k in mat.metadata}
        print(f"  partition {mat.partition}: {own}")
    for key, value in mats[0].metadata.items():
        shown = value.value if isinstance(value, dg.MetadataValue) else value
        if hasattr(shown, "records"):  # a table (per_interval): print its rows
            shown = [record.data for record in shown.records]
        if isinstance(shown, dict | list):
            shown = json.dumps(shown, default=str)
        if isinstance(shown, str) and len(shown) > 160:
            shown = shown[:157] + "..."
        print(f"  {key}: {shown}")
    for event in result.get_asset_check_evaluations():
        print(f"check {event.check_name}: {'passed' if event.passed else 'FAILED'} ({event.severity.value})")


def run_demo(env: dict[str, str]) -> None:
    """Drop the sample files and materialize the demo asset: one range run, then one partition."""
    import dagster as dg

    from localdev.demo_definitions import demo_attributes
    from localdev.samples import drop_daily_scores
    from orchestrator.components import IntervalGCSImportComponent
    from orchestrator.factories import interval_gcs_import_asset
    from orchestrator.launchers import WorkerLauncher
    from worker.core.gcs import storage_client

    attributes = demo_attributes()
    # the component's own config, built without binding resources, so `materialize` can bind the launcher
    asset = interval_gcs_import_asset(IntervalGCSImportComponent(**attributes).to_config()).assets[0]
    days = _demo_days()
    client = storage_client(project_id=attributes["project_id"])
    bucket = client.lookup_bucket(attributes["bucket_name"]) or client.create_bucket(attributes["bucket_name"])
    # a different row count per day, so each partition's own rows show in the UI's plots
    blobs = [blob for day, rows in zip(days, ROWS_PER_DAY, strict=True)
             for blob in drop_daily_scores(bucket, path_base=attributes["path_base"], days=[day], rows_per_file=rows)]
    print(f"dropped {len(blobs)} files into gs://{bucket.name}/: " + ", ".join(b.name for b in blobs))

    instance = dg.DagsterInstance.get()
    resources = {"launcher": WorkerLauncher(kind="subprocess")}
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    keys = [f"{d:%Y-%m-%d}" for d in days]
    ranged = dg.materialize(
        [asset], instance=instance, resources=resources, selection=[asset.key], run_config=quiet,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-2]},
    )
    _print_metadata(f"single run for partitions {keys[0]}..{keys[-2]}", ranged)
    single = dg.materialize([asset], instance=instance, resources=resources, selection=[asset.key],
                            partition_key=keys[-1], run_config=quiet)
    _print_metadata(f"partition {keys[-1]}", single)


def serve(env: dict[str, str], port: int) -> None:
    """``dagster dev`` on the demo's instance, with the emulators' env; Ctrl-C stops it."""
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "localdev.demo_definitions", "-h", "127.0.0.1", "-p", str(port)]
    # dagster dev copies the SIGINT handler it inherits; start it with the default one so Ctrl-C reaches it
    proc = subprocess.Popen(
        cmd, cwd=REPO, env={**os.environ, **env}, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    print(f"\nDagster UI: http://127.0.0.1:{port}/assets/demo/demo_passport_scores  (Ctrl-C stops it and the emulators)")

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and `kill PID` both stop dagster dev and then the emulators (even when started in the
    # background, where a non-interactive shell leaves SIGINT ignored)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="after the demo, keep the emulators up and run dagster dev")
    parser.add_argument("--skip-runs", action="store_true", help="with --serve: do not materialize first")
    parser.add_argument("--port", type=int, default=3000, help="dagster dev port (default 3000)")
    args = parser.parse_args(argv)

    from localdev.services import run_local_services

    DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    (DAGSTER_HOME / "dagster.yaml").touch()  # the default local storage, in this folder
    with run_local_services(workdir=EMULATOR_DIR) as services:
        env = {**services.env(), "DAGSTER_HOME": str(DAGSTER_HOME), "GCS_IMPORT_LAUNCHER": "subprocess"}
        os.environ.update(env)
        print(f"emulators: GCS {services.gcs_endpoint}, BigQuery {services.bigquery_endpoint}; "
              f"DAGSTER_HOME={DAGSTER_HOME}")
        if not (args.serve and args.skip_runs):
            run_demo(env)
        if args.serve:
            serve(env, args.port)
        else:
            print("\nTo browse these runs in the Dagster UI (emulators restarted, same instance):\n"
                  f"  .venv/bin/python -m localdev.demo --serve --skip-runs   # then open "
                  f"http://127.0.0.1:{args.port}/assets/demo/demo_passport_scores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
