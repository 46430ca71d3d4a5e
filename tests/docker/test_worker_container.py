"""The worker image against the local emulators: standalone, and under Dagster with the docker launcher.

Containers run with the host network so they reach the emulators on 127.0.0.1, exactly as the
subprocess worker does.
"""

import json
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from localdev import samples
from orchestrator.launchers import WORKER_LABEL, DockerLaunch, PipesGCSChannel, WorkerLauncher
from worker.core import contract as c
from worker.core.spec import ImportSpec

DAYS = [datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC)]
ROWS_PER_FILE = 5


def make_spec(*, bucket_name: str, unique_name: str) -> ImportSpec:
    return ImportSpec(
        name="passport_scores", key_prefix="gitcoin", project_id="test-project", bucket_name=bucket_name,
        path_base="passport", file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet",
        destination_table="passport_scores", raw_dataset_name=f"raw_{unique_name}",
        clean_dataset_name=f"clean_{unique_name}", interval="Daily", mode="Overwrite", retention_days=10,
        format="PARQUET", schema=samples.SCORES_SCHEMA,
    )


def count_rows(bq_client, spec: ImportSpec) -> int:
    table = f"`{spec.project_id}.{spec.clean_dataset_name}.{spec.destination_table}`"
    return next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM {table}").result())).n


def worker_asset(spec: ImportSpec, *, window: tuple[str, str]) -> dg.AssetsDefinition:
    """A minimal asset whose body is only the launcher call, as the factory's assets are."""
    key = dg.AssetKey([spec.key_prefix, spec.name]) if isinstance(spec.key_prefix, str) else dg.AssetKey(spec.name)

    @dg.asset(key=key, check_specs=[dg.AssetCheckSpec(name, asset=key) for name in c.ALL_CHECKS])
    def _asset(context: dg.AssetExecutionContext, launcher: WorkerLauncher):
        return launcher.launch(
            context=context,
            extras={c.EXTRA_SPEC: spec.to_dict(), c.EXTRA_ACTION: c.Action.IMPORT.value,
                    c.EXTRA_WINDOW_START: window[0], c.EXTRA_WINDOW_END: window[1],
                    c.EXTRA_RETRY_DEADLINE: 5},
        )

    return _asset


def test_standalone_container_prints_summary_and_loads_rows(
    docker_engine, worker_image, services, bucket, bq_client, unique_name, tmp_path, no_leftover_containers
):
    samples.drop_daily_scores(bucket, path_base="passport", days=DAYS, rows_per_file=ROWS_PER_FILE)
    spec = make_spec(bucket_name=bucket.name, unique_name=unique_name)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    spec_file.chmod(0o644)  # the container runs as uid 10001

    started = time.monotonic()
    container = docker_engine.containers.run(
        worker_image,
        ["import", "--spec", "/config/spec.json", "--start", "2024-01-05", "--end", "2024-01-07"],
        environment=services.env(), network_mode="host", read_only=True, tmpfs={"/tmp": "rw,size=64m"},
        volumes=[f"{spec_file}:/config/spec.json:ro"], labels={WORKER_LABEL: "1"}, detach=True,
    )
    try:
        status = container.wait(timeout=180)
        stdout = container.logs(stdout=True, stderr=False).decode()
        stderr = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, f"worker exited {status}; stderr:\n{stderr[-3000:]}"
    summary = json.loads(stdout)
    assert summary["action"] == "import"
    assert [i["status"] for i in summary["intervals"]] and all(i["rows"] == ROWS_PER_FILE for i in summary["intervals"])
    assert len(summary["intervals"]) == len(DAYS)
    # Overwrite mode: the clean table is the newest interval's snapshot.
    assert count_rows(bq_client, spec) == ROWS_PER_FILE
    print(f"standalone container run: {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize("channel", ["logs", "gcs"])
def test_materialize_with_docker_launcher_returns_worker_metadata(
    docker_engine, worker_image, services, bucket, bq_client, gcs_client, unique_name, no_leftover_containers, channel
):
    samples.drop_daily_scores(bucket, path_base="passport", days=DAYS, rows_per_file=ROWS_PER_FILE)
    spec = make_spec(bucket_name=bucket.name, unique_name=unique_name)
    asset = worker_asset(spec, window=("2024-01-05T00:00:00+00:00", "2024-01-07T00:00:00+00:00"))
    pipes = {}
    if channel == "gcs":  # the Pipes channel over GCS (the k8s default), through the same container
        pipes_bucket = gcs_client.create_bucket(f"pipes-{unique_name.replace('_', '-')}")
        pipes = {"message_channel": "gcs", "env": {"GCS_IMPORT_PIPES_INTERVAL": "0.5"},
                 "pipes_gcs": PipesGCSChannel(bucket=pipes_bucket.name, project="test-project", poll_interval_seconds=0.5)}
    launcher = WorkerLauncher(kind="docker", docker=DockerLaunch(image=worker_image, network="host"), **pipes)

    result = dg.materialize([asset], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral())

    assert result.success
    [materialization] = result.asset_materializations_for_node(asset.op.name)
    metadata = materialization.metadata
    # dagster/row_count is the clean table's size after the run (worker/reporting.py: COUNT(*) of the
    # table, worker/publishing.py::describe_clean_table): in Overwrite mode the newest interval's snapshot.
    # The rows the run loaded over the window are rows_in_window: both intervals.
    assert metadata[c.META_ROW_COUNT].value == ROWS_PER_FILE
    assert metadata[c.META_ROWS_IN_WINDOW].value == ROWS_PER_FILE * len(DAYS)
    assert metadata[c.META_FILES_LOADED].value == len(DAYS)
    assert spec.destination_table in str(metadata[c.META_TABLE_NAME].value)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks.get(c.CHECK_ROWS_LOADED) is True
    assert count_rows(bq_client, spec) == ROWS_PER_FILE
    if channel == "gcs":
        names = [b.name for b in pipes_bucket.list_blobs()]
        assert names and all(n.startswith("dagster-pipes/messages/") for n in names), names


def test_failing_worker_container_fails_the_step_with_its_error(
    docker_engine, worker_image, services, unique_name, no_leftover_containers
):
    missing = f"no-such-bucket-{unique_name.replace('_', '-')}"
    spec = make_spec(bucket_name=missing, unique_name=unique_name)
    asset = worker_asset(spec, window=("2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00"))
    launcher = WorkerLauncher(kind="docker", docker=DockerLaunch(image=worker_image))

    result = dg.materialize([asset], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "The import worker (docker) failed" in message
    assert missing in message, message  # the worker's own error, not only "exit code 1"


def test_missing_image_fails_with_build_hint(docker_engine, services, bucket, unique_name, no_leftover_containers):
    spec = make_spec(bucket_name=bucket.name, unique_name=unique_name)
    asset = worker_asset(spec, window=("2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00"))
    image = "gcs-interval-import-worker:does-not-exist"
    launcher = WorkerLauncher(kind="docker", docker=DockerLaunch(image=image))

    result = dg.materialize([asset], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert image in message and "scripts/docker-up.sh" in message, message


# A Pipes program run in the worker image (entrypoint override): one materialization whose metadata
# is far above the engine's 16 KiB log-line size, so the line arrives in several log entries.
_BIG_METADATA_SCRIPT = """
from dagster_pipes import open_dagster_pipes
with open_dagster_pipes() as pipes:
    size = pipes.extras["size"]
    pipes.report_asset_materialization(metadata={"blob": {"raw_value": "x" * size, "type": "text"},
                                                 "size": {"raw_value": size, "type": "int"}})
"""


@pytest.mark.parametrize("size", [100, 300_000])
def test_large_pipes_metadata_survives_docker_log_splitting(docker_engine, worker_image, size, no_leftover_containers):
    @dg.asset
    def big(context: dg.AssetExecutionContext, launcher: WorkerLauncher):
        return launcher.launch(context=context, extras={"size": size})

    launcher = WorkerLauncher(
        kind="docker",
        docker=DockerLaunch(image=worker_image, entrypoint=["python", "-c", _BIG_METADATA_SCRIPT]),
    )
    result = dg.materialize([big], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral())

    [materialization] = result.asset_materializations_for_node("big")
    assert materialization.metadata["size"].value == size
    assert len(materialization.metadata["blob"].value) == size
