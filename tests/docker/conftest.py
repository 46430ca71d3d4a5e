"""Docker fixtures: the engine named by DOCKER_HOST and the worker image built by scripts/docker-up.sh.

Without a reachable engine every test here skips with the reason. With ``REQUIRE_DOCKER=1``
(scripts/test.sh sets it after scripts/docker-up.sh succeeded, so in CI) a missing engine
fails instead, so the suite cannot pass by skipping. An engine without the worker image is
a failure too, with the command that builds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from orchestrator.launchers import DEFAULT_WORKER_IMAGE, WORKER_LABEL

WORKER_IMAGE = os.environ.get("WORKER_IMAGE", DEFAULT_WORKER_IMAGE)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[object]:
    import docker
    import docker.errors

    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        reason = (f"no Docker engine reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', '<unset>')}): {exc}; "
                  "start one with `bash scripts/docker-up.sh`")
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def worker_image(docker_engine) -> str:
    import docker.errors

    try:
        docker_engine.images.get(WORKER_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the worker image {WORKER_IMAGE} is not on the engine; build it with `bash scripts/docker-up.sh`")
    return WORKER_IMAGE


@pytest.fixture
def no_leftover_containers(docker_engine) -> Iterator[None]:
    """After the test, no container with the launcher's label may exist."""
    yield
    left = docker_engine.containers.list(all=True, filters={"label": f"{WORKER_LABEL}=1"})
    for container in left:  # clean up for the next test, then fail this one
        container.remove(force=True)
    assert not left, f"containers left behind: {[(c.name, c.status) for c in left]}"
