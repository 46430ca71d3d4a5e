"""The k8s launcher on a kind cluster: the worker image as a pod, applied k8s/ manifests, real Pipes."""

import dagster as dg
import pytest

from localdev import samples
from orchestrator.launchers import K8sLaunch, PipesGCSChannel, WorkerLauncher
from tests.docker.test_worker_container import (
    _BIG_METADATA_SCRIPT,
    DAYS,
    ROWS_PER_FILE,
    count_rows,
    make_spec,
    worker_asset,
)
from tests.kind.conftest import NAMESPACE, WORKER_IMAGE, wait_no_worker_pods


def k8s_launcher(kind_cluster, pod_env, *, channel: str = "logs", pipes_bucket: str | None = None,
                 **overrides) -> WorkerLauncher:
    settings = dict(
        namespace=NAMESPACE, image=WORKER_IMAGE, image_pull_policy="Never",
        service_account_name="gcs-import-worker", kubeconfig_file=str(kind_cluster.kubeconfig),
        kube_context=kind_cluster.context, poll_interval_seconds=1, pod_wait_timeout_seconds=600,
        resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    )
    settings.update(overrides)
    pipes = {"pipes_gcs": PipesGCSChannel(bucket=pipes_bucket, project="test-project", poll_interval_seconds=1)} \
        if pipes_bucket else {}
    return WorkerLauncher(kind="k8s", env={**pod_env, "GCS_IMPORT_PIPES_INTERVAL": "1"}, k8s=K8sLaunch(**settings),
                          message_channel=channel, **pipes)


@pytest.mark.parametrize("channel", ["logs", "gcs"])
def test_materialize_with_k8s_launcher(kind_cluster, pod_env, core_api, bucket, bq_client, gcs_client, unique_name,
                                       channel):
    samples.drop_daily_scores(bucket, path_base="passport", days=DAYS, rows_per_file=ROWS_PER_FILE)
    spec = make_spec(bucket_name=bucket.name, unique_name=unique_name)
    asset = worker_asset(spec, window=("2024-01-05T00:00:00+00:00", "2024-01-07T00:00:00+00:00"))
    pipes_bucket = gcs_client.create_bucket(f"pipes-{unique_name.replace('_', '-')}").name if channel == "gcs" else None
    launcher = k8s_launcher(kind_cluster, pod_env, channel=channel, pipes_bucket=pipes_bucket)

    result = dg.materialize([asset], resources={"launcher": launcher},
                            instance=dg.DagsterInstance.ephemeral())

    assert result.success
    [materialization] = result.asset_materializations_for_node(asset.op.name)
    assert materialization.metadata["files_loaded"].value == len(DAYS)
    assert count_rows(bq_client, spec) == ROWS_PER_FILE
    assert wait_no_worker_pods(core_api) == []


def test_failing_worker_pod_fails_with_its_error(kind_cluster, pod_env, core_api, unique_name):
    missing = f"no-such-bucket-{unique_name.replace('_', '-')}"
    asset = worker_asset(make_spec(bucket_name=missing, unique_name=unique_name),
                         window=("2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00"))

    result = dg.materialize([asset], resources={"launcher": k8s_launcher(kind_cluster, pod_env)},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "The import worker (k8s) failed" in message and missing in message, message
    assert wait_no_worker_pods(core_api) == []


def test_keep_failed_pod(kind_cluster, pod_env, core_api, unique_name):
    asset = worker_asset(make_spec(bucket_name="no-such-bucket-kept", unique_name=unique_name),
                         window=("2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00"))
    launcher = k8s_launcher(kind_cluster, pod_env, keep_failed_pod=True)

    result = dg.materialize([asset], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)

    assert not result.success
    kept = core_api.list_namespaced_pod(NAMESPACE, label_selector="gcs-import.worker=1").items
    try:
        assert len(kept) == 1 and kept[0].status.phase == "Failed"
    finally:
        for pod in kept:
            core_api.delete_namespaced_pod(pod.metadata.name, NAMESPACE)


@pytest.mark.parametrize("size", [300_000, 3_000_000])
def test_large_metadata_through_pod_logs(kind_cluster, pod_env, core_api, size):
    @dg.asset
    def big(context: dg.AssetExecutionContext, launcher: WorkerLauncher):
        return launcher.launch(context=context, extras={"size": size})

    launcher = k8s_launcher(kind_cluster, pod_env, command=["python", "-c", _BIG_METADATA_SCRIPT])
    result = dg.materialize([big], resources={"launcher": launcher}, instance=dg.DagsterInstance.ephemeral())

    [materialization] = result.asset_materializations_for_node("big")
    assert len(materialization.metadata["blob"].value) == size
    assert wait_no_worker_pods(core_api) == []
