"""``kind="k8s"``: one worker pod per run through ``PipesK8sClient``.

``restartPolicy: Never``, a restricted-profile security context (non-root, read-only root, no
capabilities, no service-account token), labelled like the Docker containers. The pod is deleted
after the run, except a failed pod when ``k8s.keep_failed_pod`` is set (for ``kubectl logs``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_k8s.pipes import PipesK8sPodLogsMessageReader

from orchestrator.launchers.failures import RecordsHandler
from orchestrator.launchers.settings import LAUNCH_ID_LABEL, WORKER_LABEL, WORKER_UID, K8sLaunch


class PodLogsMessageReader(RecordsHandler, PipesK8sPodLogsMessageReader):
    """``PipesK8sClient``'s default reader (the pod's log stream) that keeps the launch's message handler."""


def k8s_base_pod_meta(cfg: K8sLaunch, launch_id: str) -> dict[str, Any]:
    return {
        "labels": {**cfg.labels, WORKER_LABEL: "1", LAUNCH_ID_LABEL: launch_id},
        "annotations": dict(cfg.annotations),
    }


def k8s_base_pod_spec(cfg: K8sLaunch) -> dict[str, Any]:
    """The pod spec (snake_case, as ``dagster_k8s`` takes it) around the worker container."""
    container: dict[str, Any] = {
        "name": "worker",
        "image": cfg.image,
        "image_pull_policy": cfg.image_pull_policy,
        "resources": {"requests": dict(cfg.resources.requests), "limits": dict(cfg.resources.limits)},
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": WORKER_UID,
            "run_as_group": WORKER_UID,
            "allow_privilege_escalation": False,
            "read_only_root_filesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],  # nosec B108 # the pod's own emptyDir, not a shared host /tmp
    }
    if cfg.command:
        container["command"] = list(cfg.command)
    spec: dict[str, Any] = {
        "restart_policy": "Never",
        # The worker never calls the Kubernetes API: no service-account token in the pod.
        "automount_service_account_token": False,  # nosec B105 # a setting named 'token', not a password
        "containers": [container],
        "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "512Mi"}}],
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": WORKER_UID,
            "run_as_group": WORKER_UID,
            "fs_group": WORKER_UID,
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
    }
    if cfg.service_account_name:
        spec["service_account_name"] = cfg.service_account_name
    if cfg.node_selector:
        spec["node_selector"] = dict(cfg.node_selector)
    if cfg.tolerations:
        spec["tolerations"] = [{k: v for k, v in tol.model_dump().items() if v is not None} for tol in cfg.tolerations]
    if cfg.active_deadline_seconds:
        spec["active_deadline_seconds"] = cfg.active_deadline_seconds
    return spec


def k8s_pod_body(*, cfg: K8sLaunch, pod_name: str, env: Mapping[str, str], launch_id: str = "preview") -> Any:
    """The ``V1Pod`` dagster_k8s would create for this configuration (used by tests and for review)."""
    from dagster_k8s.pipes import build_pod_body

    return build_pod_body(
        pod_name=pod_name, image=None, command=None, env_vars=dict(env),
        base_pod_meta=k8s_base_pod_meta(cfg, launch_id), base_pod_spec=k8s_base_pod_spec(cfg),
    )


def run_k8s_worker(
    *,
    context: Any,
    extras: Mapping[str, Any],
    env: Mapping[str, str],
    cfg: K8sLaunch,
    context_injector: Any = None,
    message_reader: Any = None,
) -> dg.PipesClientCompletedInvocation:
    """Run the worker pod and delete it afterwards (kept when it failed and ``keep_failed_pod`` is set).

    Raises:
        DagsterK8sError, kubernetes ApiException, DagsterPipesError: the pod failed, timed out or
            could not be created.
    """
    from dagster_k8s import PipesK8sClient
    from dagster_k8s.utils import detect_current_namespace

    client = PipesK8sClient(
        env=dict(env),
        context_injector=context_injector,
        message_reader=message_reader,
        load_incluster_config=cfg.load_incluster_config,
        kubeconfig_file=cfg.kubeconfig_file,
        kube_context=cfg.kube_context,
        poll_interval=cfg.poll_interval_seconds,
    )
    launch_id = uuid.uuid4().hex[:12]
    failed = True
    try:
        invocation = client.run(
            context=context,
            extras=dict(extras),
            namespace=cfg.namespace,
            base_pod_meta=k8s_base_pod_meta(cfg, launch_id),
            base_pod_spec=k8s_base_pod_spec(cfg),
            pod_wait_timeout=cfg.pod_wait_timeout_seconds,
            # Deleted below instead: PipesK8sClient's own delete would raise on a pod already
            # gone (404) and hide the real error, and it cannot keep failed pods.
            delete_pod_on_completion=False,
        )
        failed = False
        return invocation
    finally:
        if failed and cfg.keep_failed_pod:
            context.log.warning(
                f"Keeping the failed worker pod (label {LAUNCH_ID_LABEL}={launch_id}) for debugging: "
                f"kubectl logs -l {LAUNCH_ID_LABEL}={launch_id}; delete it when done."
            )
        else:
            namespace = cfg.namespace or detect_current_namespace(cfg.kubeconfig_file) or "default"
            delete_worker_pods(namespace, launch_id, context)


def delete_worker_pods(namespace: str, launch_id: str, context: Any) -> None:
    """Delete this launch's pod(s); a pod already gone is fine; never raise."""
    import kubernetes

    try:
        core = kubernetes.client.CoreV1Api()
        pods = core.list_namespaced_pod(namespace, label_selector=f"{LAUNCH_ID_LABEL}={launch_id}").items
    except Exception as exc:
        context.log.warning(f"Could not list worker pods in {namespace} to delete them: {exc}")
        return
    for pod in pods:
        try:
            core.delete_namespaced_pod(pod.metadata.name, namespace)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status != 404:
                context.log.warning(f"Could not delete worker pod {pod.metadata.name}: {exc.status} {exc.reason}")
        except Exception as exc:
            context.log.warning(f"Could not delete worker pod {pod.metadata.name}: {exc}")
