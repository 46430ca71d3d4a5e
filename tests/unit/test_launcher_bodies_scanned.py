"""The worker pod and container bodies scripts/scan.sh hands to checkov (scripts/render-launcher-bodies.py):
they are what the launchers build, and they are locked down whatever checkov's verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from orchestrator.launchers.settings import WORKER_UID
from tests.unit.test_k8s_models import to_api_dict, to_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render-launcher-bodies.py"

#: checkov checks that must never be skipped for the worker pod: privilege, root, escalation,
#: capabilities, host namespaces and paths, seccomp, the service-account token, the root filesystem.
NEVER_SKIPPED = {
    "CKV_K8S_16", "CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23",
    "CKV_K8S_25", "CKV_K8S_27", "CKV_K8S_28", "CKV_K8S_29", "CKV_K8S_30", "CKV_K8S_31", "CKV_K8S_37",
    "CKV_K8S_38", "CKV_K8S_40",
}


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("render_launcher_bodies", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def written(render, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("scan")
    return {path.name: path.read_text() for path in render.write(out)}


@pytest.mark.parametrize("name", ["worker-pod-defaults.yaml", "worker-pod-helm.yaml"])
def test_rendered_pod_runs_non_root_without_privileges(written, name):
    pod = yaml.safe_load(written[name])
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert to_api_dict(to_model(pod, "V1Pod")) == pod  # a valid Pod, nothing checkov would misread
    assert pod["metadata"]["namespace"] == "gcs-import-workers"
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == WORKER_UID != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    assert all("hostPath" not in volume for volume in spec["volumes"])
    [container] = spec["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == WORKER_UID
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged") is not True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "memory" in container["resources"]["limits"]


def test_helm_render_uses_the_deployed_launch_settings(written):
    pod = yaml.safe_load(written["worker-pod-helm.yaml"])
    [container] = pod["spec"]["containers"]
    assert container["image"] == "REGISTRY/gcs-interval-import-worker:dev"
    assert pod["spec"]["serviceAccountName"] == "gcs-import-worker"


def test_skips_are_justified_and_never_cover_the_lockdown(render, written):
    assert not NEVER_SKIPPED & set(render.POD_SKIPS), "these findings must be fixed, not skipped"
    for check, reason in {**render.POD_SKIPS, **render.DOCKER_SKIPS}.items():
        assert len(reason) > 40, f"{check}: give the reason"
    for check, reason in render.POD_SKIPS.items():
        assert "=" not in reason, f"{check}: checkov splits checkov.io/skip annotations on '='"
    pod = yaml.safe_load(written["worker-pod-defaults.yaml"])
    annotations = pod["metadata"]["annotations"]
    assert {value.split("=", 1)[0] for key, value in annotations.items() if key.startswith("checkov.io/skip")} == set(
        render.POD_SKIPS)
    for check in render.DOCKER_SKIPS:
        assert f"# checkov:skip={check}: " in written["worker-docker-container.yaml"]


def test_skip_annotations_exist_only_in_the_rendered_file(render):
    pod = render.render_pod()
    assert not any(key.startswith("checkov.io/") for key in pod["metadata"].get("annotations") or {})


def test_rendered_docker_container_is_locked_down(written):
    container = yaml.safe_load(written["worker-docker-container.yaml"])["docker_container"]
    assert container["image"] == "gcs-interval-import-worker:dev"
    assert container["read_only"] is True
    assert "nosuid" in container["tmpfs"]["/tmp"]
    assert "user" not in container  # the image's USER 10001
    assert not {"privileged", "cap_add", "devices", "pid_mode", "ipc_mode", "security_opt"} & set(container)
    assert all("docker.sock" not in volume for volume in container.get("volumes", []))


def test_render_ignores_the_callers_environment(render, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/key.json")
    monkeypatch.setenv("GCS_IMPORT_K8S_LAUNCH", '{"image": "elsewhere/worker:9"}')
    pod = render.render_pod()
    [container] = pod["spec"]["containers"]
    assert container["image"] == "gcs-interval-import-worker:dev"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {item["name"] for item in container["env"]}
    assert render.render_docker()["environment"] == render.PIPES_ENV
