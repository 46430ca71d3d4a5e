"""checkov checks for the Docker worker container (scripts/scan.sh, --framework yaml).

checkov has no framework for Docker Engine API bodies, so scripts/render-launcher-bodies.py writes the
``docker.containers.create`` arguments the Docker launcher builds as YAML under a ``docker_container``
key, and these checks apply the rules checkov's kubernetes checks apply to a pod (CKV_K8S_16, 17, 18,
19, 22, 23, 25, 27, 31) to those arguments (docker-py names: privileged, pid_mode, network_mode, ...).
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.yaml_doc.base_yaml_check import BaseYamlCheck
from checkov.yaml_doc.enums import BlockType

ENTITY = "docker_container"


class _DockerContainerCheck(BaseYamlCheck):
    def __init__(self, check_id: str, name: str) -> None:
        super().__init__(name=name, id=check_id, categories=[CheckCategories.GENERAL_SECURITY],
                         supported_entities=[ENTITY], block_type=BlockType.OBJECT)

    def scan_entity_conf(self, conf: dict[str, Any], entity_type: str) -> CheckResult:  # type: ignore[override]
        if not isinstance(conf, dict):
            return CheckResult.UNKNOWN
        return CheckResult.PASSED if self.ok(conf) else CheckResult.FAILED

    def ok(self, conf: dict[str, Any]) -> bool:
        raise NotImplementedError


class NotPrivileged(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_1", "Docker worker container is not privileged and adds no devices")

    def ok(self, conf: dict[str, Any]) -> bool:
        return not conf.get("privileged") and not conf.get("devices")


class ReadOnlyRoot(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_2", "Docker worker container has a read-only root filesystem")

    def ok(self, conf: dict[str, Any]) -> bool:
        return conf.get("read_only") is True


class NoHostNamespaces(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_3", "Docker worker container shares no host namespace (network, PID, IPC, UTS, user)")

    def ok(self, conf: dict[str, Any]) -> bool:
        return all(conf.get(key) != "host" for key in ("network_mode", "pid_mode", "ipc_mode", "uts_mode", "userns_mode"))


class NoAddedCapabilities(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_4", "Docker worker container adds no capabilities and keeps seccomp/AppArmor on")

    def ok(self, conf: dict[str, Any]) -> bool:
        opts = [str(opt).replace(":", "=") for opt in conf.get("security_opt") or []]
        return not conf.get("cap_add") and not any(opt.endswith("=unconfined") for opt in opts)


class NoEngineSocket(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_5", "Docker worker container does not mount the Docker engine socket")

    def ok(self, conf: dict[str, Any]) -> bool:
        volumes = conf.get("volumes") or []
        sources = list(volumes) if isinstance(volumes, (list, dict)) else [volumes]
        return not any("docker.sock" in str(source) for source in sources)


class NotRoot(_DockerContainerCheck):
    def __init__(self) -> None:
        super().__init__("CKV_GCSI_DOCKER_6", "Docker worker container does not run as root (no user: the image's uid 10001)")

    def ok(self, conf: dict[str, Any]) -> bool:
        user = str(conf.get("user") or "").split(":")[0]
        return user not in ("root", "0")


checks = [NotPrivileged(), ReadOnlyRoot(), NoHostNamespaces(), NoAddedCapabilities(), NoEngineSocket(), NotRoot()]
