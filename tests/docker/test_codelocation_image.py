"""The code location image (Dockerfile target ``codelocation``) serves the definitions over gRPC,
as the Dagster Helm chart's user deployment runs it."""

import os
import time

import pytest

CODELOCATION_IMAGE = os.environ.get("CODELOCATION_IMAGE", "gcs-interval-import-codelocation:dev")


@pytest.fixture(scope="module")
def codelocation_image(docker_engine) -> str:
    import docker.errors

    try:
        docker_engine.images.get(CODELOCATION_IMAGE)
    except docker.errors.ImageNotFound:
        reason = f"{CODELOCATION_IMAGE} is not built: run `BUILD_CODELOCATION=1 bash scripts/docker-up.sh`"
        if os.environ.get("CI") == "true":  # docker-up.sh builds it in CI
            pytest.fail(reason)
        pytest.skip(reason)
    return CODELOCATION_IMAGE


def test_code_server_serves_definitions_as_non_root(docker_engine, codelocation_image):
    container = docker_engine.containers.run(
        codelocation_image, detach=True, labels={"gcs-import.test": "codelocation"},
        environment={"GCS_IMPORT_LAUNCHER": "k8s", "GCS_IMPORT_K8S_LAUNCH": '{"namespace": "gcs-import"}',
                     "GCS_IMPORT_PIPES_GCS_BUCKET": "pipes-bucket"},
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            code, out = container.exec_run(["dagster", "api", "grpc-health-check", "-p", "3030"])
            if code == 0:
                break
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            assert time.monotonic() < deadline, f"code server not healthy: {out.decode()}\n{container.logs().decode()[-3000:]}"
            time.sleep(1)
        assert "Started Dagster code server for module orchestrator.definitions" in container.logs().decode()
        code, out = container.exec_run(["id", "-u"])
        assert out.decode().strip() == "10001"
        code, out = container.exec_run(["python", "-c", "import dagster_k8s, dagster_docker, worker"])
        assert code == 0, out.decode()
    finally:
        container.remove(force=True)


def test_code_server_refuses_a_k8s_launcher_without_its_pipes_prefix(docker_engine, codelocation_image):
    """k8s defaults to Pipes over GCS: without the prefix the definitions do not load, and say why."""
    container = docker_engine.containers.run(
        codelocation_image, detach=True, labels={"gcs-import.test": "codelocation"},
        environment={"GCS_IMPORT_LAUNCHER": "k8s"},
    )
    try:
        result = container.wait(timeout=120)
        logs = container.logs().decode()
        assert result["StatusCode"] != 0, logs[-3000:]
        assert "GCS_IMPORT_PIPES_GCS_BUCKET" in logs and "GCS_IMPORT_MESSAGE_CHANNEL=logs" in logs, logs[-3000:]
    finally:
        container.remove(force=True)
