"""Write the worker pod and container bodies the launchers build, as files checkov can scan.

    .venv/bin/python scripts/render-launcher-bodies.py [OUT_DIR]     (default .local/scan; scripts/scan.sh runs it)

  worker-pod-defaults.yaml    the V1Pod of WorkerLauncher(kind="k8s") with K8sLaunch's defaults, as
                              dagster_k8s builds it (orchestrator/launchers/k8s_launcher.py)
  worker-pod-helm.yaml        the same with the K8sLaunch JSON the Helm values deploy
                              (k8s/helm/dagster-values.yaml, GCS_IMPORT_K8S_LAUNCH)
  worker-docker-container.yaml  docker.containers.create arguments of kind="docker" with DockerLaunch's
                              defaults (orchestrator/launchers/docker_launcher.py), checked by the
                              custom checks in scripts/checkov-checks/ (checkov has no Docker Engine API
                              framework of its own)

The launcher code is imported and run, not copied: a change there changes what is scanned. Findings
that are accepted are justified below (POD_SKIPS, DOCKER_SKIPS); they are written into the files (as
`checkov.io/skipN` annotations on the pod, the only suppression checkov's kubernetes runner reads, and as
`# checkov:skip=` comments in the Docker file), so checkov reports them as skipped, with the reason. The
annotations exist only in the rendered file, not on the pods the launcher creates.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.launchers.settings import DEFAULT_FORWARDED_ENV, DOCKER_LAUNCH_ENV, K8S_LAUNCH_ENV  # noqa: E402

HELM_VALUES = ROOT / "k8s" / "helm" / "dagster-values.yaml"
#: Where the worker pods run (k8s/namespace.yaml); the Helm values name it, the defaults do not.
WORKER_NAMESPACE = "gcs-import-workers"

#: checkov findings on the rendered worker pods that are accepted, with the reason (no "=" in a reason:
#: checkov splits the annotation value on it).
POD_SKIPS = {
    "CKV_K8S_8": "no liveness probe: the worker is a run-to-completion pod (restartPolicy Never) with no "
    "server to probe; a hung run is ended by activeDeadlineSeconds and the launcher's pod_wait_timeout",
    "CKV_K8S_9": "no readiness probe: the worker pod serves no traffic, nothing routes to it",
    "CKV_K8S_11": "no CPU limit on purpose: a CFS quota throttles the load job's parsing; the CPU request "
    "schedules the pod, and the memory limit (set) bounds it; K8sLaunch.resources can add one",
    "CKV_K8S_15": "imagePullPolicy IfNotPresent by default: the kind suite side-loads the image (pull "
    "policy Never there) and a deployment pins an immutable tag; K8sLaunch.image_pull_policy Always is "
    "available. Changing the default would change the launcher's behaviour",
    "CKV_K8S_43": "image by tag, not digest: the image is deployment configuration (K8sLaunch.image, the "
    "Helm values' REGISTRY/...:TAG placeholder); a digest can be set there, the code cannot know it",
    "CKV2_K8S_6": "no NetworkPolicy in k8s/ yet: a deny-all-ingress policy for gcs-import-workers would "
    "change the deployment (reported, not made here); the worker pod listens on no port and serves nothing",
}

#: Findings of scripts/checkov-checks/ on the Docker container arguments that are accepted.
DOCKER_SKIPS = {
    "CKV_GCSI_DOCKER_3": "network_mode host by default: kind=docker is the local/CI launcher, and the "
    "emulators it talks to listen on 127.0.0.1 of the host; DockerLaunch.network names a bridge network "
    "instead (production runs kind=k8s)",
}

#: Placeholders for the variables PipesK8sClient / PipesDockerClient add (not secrets: where to find the
#: run's context and where to write messages).
PIPES_ENV = {"DAGSTER_PIPES_CONTEXT": "<pipes context>", "DAGSTER_PIPES_MESSAGES": "<pipes messages>"}


@contextmanager
def clean_environ(**values: str) -> Iterator[None]:
    """The launcher reads os.environ (forwarded variables, *_LAUNCH JSON): render from a known one."""
    names = {*DEFAULT_FORWARDED_ENV, K8S_LAUNCH_ENV, DOCKER_LAUNCH_ENV}
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    os.environ.update(values)
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(saved)


def helm_k8s_launch_json() -> str:
    """The GCS_IMPORT_K8S_LAUNCH value of the user deployment in k8s/helm/dagster-values.yaml."""
    values = yaml.safe_load(HELM_VALUES.read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    [value] = [item["value"] for item in deployment["env"] if item["name"] == K8S_LAUNCH_ENV]
    return value


def render_pod(k8s_launch_json: str | None = None) -> dict[str, Any]:
    """The worker V1Pod as sent to the API (camelCase), from K8sLaunch defaults or the given JSON."""
    import kubernetes

    from orchestrator.launchers import K8sLaunch, WorkerLauncher

    with clean_environ(**({K8S_LAUNCH_ENV: k8s_launch_json} if k8s_launch_json else {})):
        k8s = K8sLaunch() if k8s_launch_json else K8sLaunch(namespace=WORKER_NAMESPACE)
        pod = WorkerLauncher(kind="k8s", k8s=k8s).k8s_pod_body(pod_name="dagster-pipes-preview", env=PIPES_ENV)
        namespace = WorkerLauncher(kind="k8s", k8s=k8s).effective_k8s().namespace
    body = kubernetes.client.ApiClient().sanitize_for_serialization(pod)
    body = {"apiVersion": "v1", "kind": "Pod", **body}
    # The launcher passes the namespace to create_namespaced_pod, not in the body: put it where checkov looks.
    body["metadata"]["namespace"] = namespace
    return body


def with_pod_skips(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` with POD_SKIPS as checkov.io/skipN annotations (for the scan only)."""
    skips = {f"checkov.io/skip{n}": f"{check}={reason}" for n, (check, reason) in enumerate(POD_SKIPS.items(), 1)}
    meta = pod["metadata"]
    return {**pod, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), **skips}}}


def render_docker() -> dict[str, Any]:
    """docker.containers.create arguments of kind="docker" (DockerLaunch defaults), with image and env."""
    from orchestrator.launchers import DockerLaunch, WorkerLauncher

    with clean_environ():
        launcher = WorkerLauncher(kind="docker", docker=DockerLaunch())
        kwargs = launcher.docker_container_kwargs("preview")
        image = launcher.effective_docker().image
    return {"image": image, "environment": dict(PIPES_ENV), **kwargs}


def _with_skip_comments(header: str, body_yaml: str, skips: dict[str, str]) -> str:
    """``body_yaml`` with a checkov:skip comment per accepted finding, inside its top mapping (where
    checkov's suppression lookup matches the entity's lines)."""
    first, rest = body_yaml.split("\n", 1)
    comments = "".join(f"  # checkov:skip={check}: {reason}\n" for check, reason in skips.items())
    return f"{header}{first}\n{comments}{rest}"


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pods = {
        "worker-pod-defaults.yaml": (render_pod(), "K8sLaunch defaults"),
        "worker-pod-helm.yaml": (render_pod(helm_k8s_launch_json()), f"K8sLaunch from {HELM_VALUES.relative_to(ROOT)}"),
    }
    for name, (pod, source) in pods.items():
        header = f"# Generated by scripts/render-launcher-bodies.py ({source}); scanned by scripts/scan.sh.\n"
        (out_dir / name).write_text(header + yaml.safe_dump(with_pod_skips(pod), sort_keys=False, width=1000))
        written.append(out_dir / name)
    docker = yaml.safe_dump({"docker_container": render_docker()}, sort_keys=False, width=1000)
    header = "# Generated by scripts/render-launcher-bodies.py (DockerLaunch defaults); scanned by scripts/scan.sh.\n"
    (out_dir / "worker-docker-container.yaml").write_text(_with_skip_comments(header, docker, DOCKER_SKIPS))
    written.append(out_dir / "worker-docker-container.yaml")
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else ROOT / ".local" / "scan"
    for path in write(out_dir):
        print(f"render-launcher-bodies: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
