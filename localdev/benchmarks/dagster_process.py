"""One Dagster materialization in a fresh process, measured from inside it (the child side).

``python -m localdev.benchmarks.dagster_process '<json>'`` builds either the project's asset
(``"asset": "import"``: ``interval_gcs_import_asset`` + ``WorkerLauncher``, the worker a child
process or container) or an in-process peer (``"asset": "peer"``: what a hand-written asset does,
listing, matching and loading from inside Dagster), materializes the given partitions and prints
one JSON line: the process's own peak RSS (``VmHWM``, so the worker's memory is not counted),
and the run's timings from its event log.
"""


import json
import re
import sys
import time
from typing import Any

import dagster as dg

WORKER_FIRST_LINE = "Listing gs://"


def own_peak_rss_mib() -> float:
    """This process's peak resident set size (``VmHWM``), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def peer_asset(spec_fields: dict[str, Any]) -> dg.AssetsDefinition:
    """A hand-written import asset: the listing, the matching and the load job run in the Dagster process."""
    from google.cloud import bigquery

    from orchestrator.factories import IntervalGCSAsset
    from orchestrator.factories.partitions import partitions_def_for
    from worker.bigquery_client import bigquery_client
    from worker.core.gcs import storage_client

    spec = IntervalGCSAsset(**spec_fields)
    pattern = re.compile(re.escape(spec.object_prefix) + spec.file_match)

    @dg.asset(name=f"{spec.name}_peer", partitions_def=partitions_def_for(spec))
    def peer(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        # plain clients (worker.core.gcs and worker.bigquery_client only point them at the emulators when the environment says so)
        gcs = storage_client(project_id=spec.project_id)
        bq = bigquery_client(project_id=spec.project_id)
        day = context.partition_time_window.start.strftime("%Y-%m-%d")
        blobs = [b for b in gcs.list_blobs(spec.bucket_name, prefix=spec.object_prefix)
                 if (m := pattern.fullmatch(b.name)) and m.group("interval_timestamp") == day]
        uris = [f"gs://{spec.bucket_name}/{b.name}" for b in blobs]
        table = f"{spec.project_id}.{spec.raw_dataset_name}.{spec.destination_table}_peer_{day.replace('-', '')}"
        config = bigquery.LoadJobConfig(source_format=str(spec.format.value), write_disposition="WRITE_TRUNCATE",
                                        skip_leading_rows=1, schema=[bigquery.SchemaField(c.name, c.type)
                                                                     for c in spec.schema])
        for i in range(0, len(uris), 10_000):
            bq.load_table_from_uri(uris[i:i + 10_000], table, job_config=config).result()
        context.log.info(f"loaded {len(uris)} files into {table}")
        return dg.MaterializeResult(metadata={"files": len(uris), "bytes": sum(b.size or 0 for b in blobs)})

    return peer


def import_asset(spec_fields: dict[str, Any]) -> dg.AssetsDefinition:
    from orchestrator.factories import IntervalGCSAsset
    from orchestrator.factories.import_asset import interval_gcs_import_asset

    return interval_gcs_import_asset(IntervalGCSAsset(**spec_fields), code_references=[]).assets[0]


def _timings(instance: dg.DagsterInstance, run_id: str) -> dict[str, float | None]:
    """Seconds from each step's start to the worker's first message and to the step's end, summed over steps."""
    starts: list[float] = []
    ends: list[float] = []
    first_message: list[float] = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.STEP_START:
            starts.append(entry.timestamp)
        elif event is not None and event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends.append(entry.timestamp)
        elif event is None and WORKER_FIRST_LINE in (entry.user_message or "") and len(first_message) < len(starts):
            first_message.append(entry.timestamp)
    step = sum(e - s for s, e in zip(starts, ends, strict=False))
    to_first = sum(f - s for s, f in zip(starts, first_message, strict=False)) if first_message else None
    return {"step_seconds": step, "to_first_message_seconds": to_first}


def main() -> None:
    args = json.loads(sys.argv[1])
    from orchestrator.launchers import WorkerLauncher

    asset = peer_asset(args["spec"]) if args["asset"] == "peer" else import_asset(args["spec"])
    resources = {} if args["asset"] == "peer" else {"launcher": WorkerLauncher(**args.get("launcher", {}))}
    instance = dg.DagsterInstance.ephemeral()
    runs = []
    started = time.monotonic()
    for window in args["windows"]:  # each window is one run: [first key, last key]
        first, last = window
        kwargs: dict[str, Any] = (
            {"partition_key": first} if first == last else
            {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}}
        )
        result = dg.materialize([asset], instance=instance, resources=resources, **kwargs)
        runs.append(_timings(instance, result.run_id))
    print(json.dumps({
        "peak_rss_mib": own_peak_rss_mib(),
        "wall_seconds": time.monotonic() - started,
        "runs": runs,
    }))


if __name__ == "__main__":
    main()
