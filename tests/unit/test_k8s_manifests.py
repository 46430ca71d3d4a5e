"""Every manifest in k8s/ parses into the official client's models, and the RBAC is exactly what
dagster_k8s.PipesK8sClient uses."""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
import subprocess

import dagster_k8s.client
import dagster_k8s.pipes
import pytest
import yaml

from orchestrator.launchers import K8S_LAUNCH_ENV, K8sLaunch, WorkerLauncher
from tests.unit.test_k8s_models import (
    K8S_DIR,
    MODEL_BY_KIND,
    all_api_objects,
    load_docs,
    manifest_files,
    to_api_dict,
    to_model,
)

NAMESPACE = "gcs-import"
WORKER_NAMESPACE = "gcs-import-workers"
#: Where each namespaced object belongs: the worker pods' rights live with the workers only.
NAMESPACE_OF = {("ServiceAccount", "gcs-import-code-server"): NAMESPACE, ("ServiceAccount", "gcs-import-worker"): WORKER_NAMESPACE,
                ("Role", "gcs-import-worker-launcher"): WORKER_NAMESPACE, ("RoleBinding", "gcs-import-worker-launcher"): WORKER_NAMESPACE}
CODE_SERVER_SA = "gcs-import-code-server"
WORKER_SA = "gcs-import-worker"


def objects_of(kind: str) -> list[dict]:
    return [doc for _, doc in all_api_objects() if doc["kind"] == kind]


@pytest.mark.parametrize(
    ("path", "doc"), all_api_objects(), ids=lambda v: v.name if hasattr(v, "name") else v.get("kind", "?")
)
def test_manifest_round_trips_through_client_model(path, doc):
    assert doc["kind"] in MODEL_BY_KIND, f"{path}: no model mapping for kind {doc['kind']}"
    model = to_model(doc, MODEL_BY_KIND[doc["kind"]])
    # A misspelt or misplaced field is dropped by the model: the round trip would differ.
    assert to_api_dict(model) == doc, f"{path}: fields the {MODEL_BY_KIND[doc['kind']]} model does not know"
    if doc["kind"] != "Namespace":
        want = NAMESPACE_OF[(doc["kind"], doc["metadata"]["name"])]
        assert model.metadata.namespace == want, f"{path}: {doc['kind']} must be namespaced to {want}"


@pytest.mark.parametrize(
    ("path", "doc"), all_api_objects(), ids=lambda v: v.name if hasattr(v, "name") else v.get("kind", "?")
)
def test_manifest_is_valid_against_the_kubernetes_api_schema(path, doc):
    """Issue 9.8: the official OpenAPI schemas (shipped by kubernetes-validate, offline), strict: unknown
    fields are errors, not silently dropped."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, "1.33", strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{path}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_worker_pods_live_apart_and_mount_no_token():
    """The code server may create pods only in the workers' namespace, where nothing of Dagster's runs; the
    worker's account mounts no API token (it never calls the Kubernetes API)."""
    namespaces = {d["metadata"]["name"]: d for d in objects_of("Namespace")}
    assert set(namespaces) == {NAMESPACE, WORKER_NAMESPACE}
    assert namespaces[WORKER_NAMESPACE]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    [worker] = [sa for sa in objects_of("ServiceAccount") if sa["metadata"]["name"] == WORKER_SA]
    assert worker["automountServiceAccountToken"] is False
    assert {r["metadata"]["namespace"] for r in objects_of("Role") + objects_of("RoleBinding")} == {WORKER_NAMESPACE}
    pod = WorkerLauncher(kind="k8s", k8s=K8sLaunch(namespace=WORKER_NAMESPACE)).k8s_pod_body(pod_name="p", env={})
    assert pod.spec.automount_service_account_token is False


def test_code_server_account_reads_gcs_through_workload_identity():
    """Issue 9.7: the new-files sensor lists GCS from the code server, so its account has a Workload Identity mapping."""
    [code] = [sa for sa in objects_of("ServiceAccount") if sa["metadata"]["name"] == CODE_SERVER_SA]
    gsa = code["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa.startswith("gcs-import-code-server@")
    rbac_text = (K8S_DIR / "rbac.yaml").read_text()
    assert "roles/storage.objectViewer" in rbac_text and "objectAdmin" not in rbac_text


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert "namespace" not in kustomization, "two namespaces: each object names its own"
    listed = {K8S_DIR / name for name in kustomization["resources"]}
    assert listed == set(manifest_files())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_all_objects():
    out = subprocess.run(["kubectl", "kustomize", str(K8S_DIR)], check=True, capture_output=True, text=True).stdout
    rendered = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d)
    expected = sorted((d["kind"], d["metadata"]["name"]) for _, d in all_api_objects())
    assert rendered == expected


def test_nothing_cluster_wide():
    kinds = {doc["kind"] for _, doc in all_api_objects()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}


def _api_calls_of_pipes_k8s_client() -> set[str]:
    """CoreV1Api/BatchV1Api method names PipesK8sClient's code path calls (read from dagster_k8s' source)."""
    calls: set[str] = set()

    def scan(source: str) -> None:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute | ast.Name):
                owner = node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id
                if owner in {"core_api", "batch_api"}:
                    calls.add(node.attr)

    scan(inspect.getsource(dagster_k8s.pipes))
    k8s_client = dagster_k8s.client.DagsterKubernetesClient
    for method in ("wait_for_pod", "get_pod_by_name", "retrieve_pod_logs"):
        scan(inspect.cleandoc("\n" + inspect.getsource(getattr(k8s_client, method))))
    return calls


_VERB_BY_PREFIX = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch",
                   "replace": "update", "watch": "watch"}


def _permission(api_method: str) -> tuple[str, str]:
    """create_namespaced_pod -> ('pods', 'create'); read_namespaced_pod_log -> ('pods/log', 'get')."""
    match = re.fullmatch(r"(create|read|list|delete|patch|replace)_namespaced_(pod|job|event)(_log|_status)?", api_method)
    assert match, f"dagster_k8s calls {api_method}: extend this mapping and check the Role"
    verb, resource, sub = match.groups()
    return f"{resource}s" + (f"/{sub[1:]}" if sub else ""), _VERB_BY_PREFIX[verb]


def test_role_grants_exactly_what_pipes_k8s_client_calls():
    calls = _api_calls_of_pipes_k8s_client()
    # The launcher's own cleanup lists and deletes pods too.
    calls |= {"list_namespaced_pod", "delete_namespaced_pod"}
    needed = {_permission(call) for call in calls}
    assert needed == {("pods", "create"), ("pods", "get"), ("pods", "list"), ("pods", "delete"), ("pods/log", "get")}, (
        f"dagster_k8s now calls {sorted(calls)}: review k8s/rbac.yaml"
    )

    [role] = objects_of("Role")
    granted = {(res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    missing = needed - granted
    assert not missing, f"Role lacks {missing}"
    # Exactly the needed verbs, plus watch on pods (kubectl and future log/wait code use it).
    assert granted == needed | {("pods", "watch")}


def test_role_binding_binds_code_server_account():
    [binding] = objects_of("RoleBinding")
    [role] = objects_of("Role")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": CODE_SERVER_SA, "namespace": NAMESPACE}]
    names = {sa["metadata"]["name"] for sa in objects_of("ServiceAccount")}
    assert names == {CODE_SERVER_SA, WORKER_SA}


def test_worker_service_account_uses_workload_identity():
    [worker] = [sa for sa in objects_of("ServiceAccount") if sa["metadata"]["name"] == WORKER_SA]
    gsa = worker["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert re.fullmatch(r"[a-z0-9-]+@[A-Za-z0-9_-]+\.iam\.gserviceaccount\.com", gsa)
    assert "secrets" not in worker and "imagePullSecrets" not in worker  # no key files


def test_kind_cluster_config():
    [cfg] = load_docs(K8S_DIR / "kind-cluster.yaml")
    assert (cfg["kind"], cfg["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert cfg["name"] and any(node["role"] == "control-plane" for node in cfg["nodes"])


def _user_deployment() -> dict:
    values = yaml.safe_load((K8S_DIR / "helm" / "dagster-values.yaml").read_text())
    user = values["dagster-user-deployments"]
    assert user["serviceAccount"] == {"create": False, "name": CODE_SERVER_SA}
    [deployment] = user["deployments"]
    return deployment


def test_helm_values_configure_codelocation_and_k8s_launcher(monkeypatch):
    deployment = _user_deployment()
    assert deployment["image"]["repository"].endswith("gcs-interval-import-codelocation")
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestrator.definitions"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["GCS_IMPORT_LAUNCHER"] == "k8s"
    # The container parts are valid client models.
    to_model({"name": "x", "resources": deployment["resources"], "securityContext": deployment["securityContext"]},
             "V1Container")
    assert to_api_dict(to_model(deployment["securityContext"], "V1SecurityContext")) == deployment["securityContext"]
    assert to_api_dict(to_model(deployment["resources"], "V1ResourceRequirements")) == deployment["resources"]

    # The launcher settings are a valid K8sLaunch and yield a pod in the namespace, as the worker SA.
    settings = K8sLaunch(**json.loads(env[K8S_LAUNCH_ENV]))
    assert settings.namespace == WORKER_NAMESPACE and settings.service_account_name == WORKER_SA
    assert settings.image.endswith("gcs-interval-import-worker:dev")
    monkeypatch.setenv(K8S_LAUNCH_ENV, env[K8S_LAUNCH_ENV])
    pod = WorkerLauncher(kind="k8s").k8s_pod_body(pod_name="p", env={})
    assert pod.spec.service_account_name == WORKER_SA
    assert pod.spec.containers[0].image == settings.image


def test_helm_values_give_the_k8s_launcher_its_gcs_pipes_channel():
    """k8s defaults to Pipes over GCS: the Helm env must name the prefix, or definitions would not load."""
    from orchestrator.launchers.from_env import launcher_from_env

    env = {item["name"]: item["value"] for item in _user_deployment()["env"]}
    launcher = launcher_from_env(env)
    assert launcher.kind == "k8s" and launcher.effective_channel() == "gcs"
    assert launcher.pipes_gcs.clean_prefix() == "dagster-pipes"
    # the IAM conditions in the manifests' comments grant exactly that prefix
    for manifest in ("rbac.yaml", "worker-serviceaccount.yaml"):
        text = (K8S_DIR / manifest).read_text()
        assert "objects/dagster-pipes/" in text, manifest
