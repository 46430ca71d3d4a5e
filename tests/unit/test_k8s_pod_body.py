"""The worker pod as dagster_k8s builds it from WorkerLauncher's k8s settings."""

from __future__ import annotations

import pytest
from dagster_k8s.utils import get_common_labels
from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, DAGSTER_PIPES_MESSAGES_ENV_VAR, encode_env_var

from orchestrator.launchers import LAUNCH_ID_LABEL, WORKER_LABEL, WORKER_UID, K8sLaunch, WorkerLauncher
from tests.unit.test_k8s_models import to_api_dict, to_model

PIPES_ENV = {
    DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_env_var({"env": "context"}),
    DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_env_var({"stdio": "stderr"}),
}


@pytest.fixture
def launcher(monkeypatch) -> WorkerLauncher:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GCS_IMPORT_K8S_LAUNCH", raising=False)
    return WorkerLauncher(
        kind="k8s",
        env={"LOG_LEVEL": "debug"},
        k8s=K8sLaunch(
            namespace="gcs-import",
            image="registry.example/worker:1.2.3",
            image_pull_policy="Always",
            service_account_name="gcs-import-worker",
            resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
            node_selector={"cloud.google.com/gke-nodepool": "batch"},
            tolerations=[{"key": "batch", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
            labels={"team": "data"},
            annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
            active_deadline_seconds=3600,
        ),
    )


def env_of(container) -> dict[str, str]:
    return {item.name: item.value for item in container.env}


def test_pod_body_carries_the_settings(launcher):
    pod = launcher.k8s_pod_body(pod_name="dagster-run-1", env=PIPES_ENV, launch_id="abc123")
    spec = pod.spec
    [container] = spec.containers
    assert pod.metadata.name == "dagster-run-1"
    assert container.image == "registry.example/worker:1.2.3"
    assert container.image_pull_policy == "Always"
    assert container.command is None  # the image's ENTRYPOINT: python -m worker
    assert spec.restart_policy == "Never"
    assert spec.service_account_name == "gcs-import-worker"
    assert container.resources.requests == {"cpu": "500m", "memory": "1Gi"}
    assert container.resources.limits == {"cpu": "2", "memory": "4Gi"}
    assert spec.node_selector == {"cloud.google.com/gke-nodepool": "batch"}
    [tol] = spec.tolerations
    assert (tol.key, tol.operator, tol.value, tol.effect) == ("batch", "Equal", "true", "NoSchedule")
    assert spec.active_deadline_seconds == 3600
    assert pod.metadata.labels == {**get_common_labels(), "team": "data", WORKER_LABEL: "1", LAUNCH_ID_LABEL: "abc123"}
    assert pod.metadata.annotations == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}


def test_pod_env_has_pipes_variables_and_forwarded_env(launcher):
    pod = launcher.k8s_pod_body(pod_name="p", env=PIPES_ENV)
    env = env_of(pod.spec.containers[0])
    assert env[DAGSTER_PIPES_CONTEXT_ENV_VAR] == PIPES_ENV[DAGSTER_PIPES_CONTEXT_ENV_VAR]
    assert env[DAGSTER_PIPES_MESSAGES_ENV_VAR] == PIPES_ENV[DAGSTER_PIPES_MESSAGES_ENV_VAR]
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9023"
    assert env["LOG_LEVEL"] == "debug"
    assert "BIGQUERY_EMULATOR_HOST" not in env  # only names that are set are forwarded


def test_pod_runs_non_root_and_locked_down(launcher):
    pod = launcher.k8s_pod_body(pod_name="p", env=PIPES_ENV)
    pod_sc = pod.spec.security_context
    assert pod_sc.run_as_non_root is True and pod_sc.run_as_user == WORKER_UID
    assert pod_sc.seccomp_profile.type == "RuntimeDefault"
    sc = pod.spec.containers[0].security_context
    assert sc.run_as_non_root is True and sc.run_as_user == WORKER_UID
    assert sc.allow_privilege_escalation is False
    assert sc.read_only_root_filesystem is True
    assert sc.capabilities.drop == ["ALL"]
    # /tmp stays writable on a read-only root.
    [mount] = pod.spec.containers[0].volume_mounts
    assert mount.mount_path == "/tmp"
    assert {v.name for v in pod.spec.volumes} == {mount.name}


def test_pod_body_is_a_valid_api_object(launcher):
    pod = launcher.k8s_pod_body(pod_name="p", env=PIPES_ENV)
    as_sent = to_api_dict(pod)
    assert as_sent["spec"]["restartPolicy"] == "Never"
    assert as_sent["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert to_api_dict(to_model(as_sent, "V1Pod")) == as_sent


def test_defaults_build_a_pod():
    pod = WorkerLauncher(kind="k8s").k8s_pod_body(pod_name="p", env=PIPES_ENV)
    assert pod.spec.containers[0].image == "gcs-interval-import-worker:dev"
    assert pod.spec.service_account_name == "gcs-import-worker"
    assert pod.spec.tolerations is None and pod.spec.node_selector is None


def test_env_json_fills_unset_fields_only(monkeypatch):
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"namespace": "from-env", "image": "env/image:1"}')
    launcher = WorkerLauncher(kind="k8s", k8s=K8sLaunch(image="explicit/image:2"))
    effective = launcher.effective_k8s()
    assert effective.namespace == "from-env"
    assert effective.image == "explicit/image:2"


def test_invalid_env_json_names_the_variable(monkeypatch):
    from orchestrator.launchers import WorkerLaunchError

    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image_pull_policy": "Sometimes"}')
    with pytest.raises(WorkerLaunchError, match="GCS_IMPORT_K8S_LAUNCH"):
        WorkerLauncher(kind="k8s").effective_k8s()


def test_restart_policy_always_is_refused_by_dagster_k8s(launcher):
    # The launcher never lets a base spec through with Always: dagster_k8s would refuse it.
    from dagster._core.errors import DagsterInvariantViolationError
    from dagster_k8s.pipes import build_pod_body

    spec = {**launcher.k8s_base_pod_spec(), "restart_policy": "Always"}
    with pytest.raises(DagsterInvariantViolationError):
        build_pod_body(pod_name="p", image=None, command=None, env_vars={}, base_pod_meta={}, base_pod_spec=spec)
