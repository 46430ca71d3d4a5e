"""tests/kind/conftest.py's decision on a failed ``kind create cluster`` (once kind, kubectl and a Docker
engine are present, so a cluster is expected): a node image that cannot be pulled skips outside CI and
fails with ``CI=true``; any other failure fails everywhere. The outputs are kind's own error lines."""

from __future__ import annotations

import pytest

from tests.kind.conftest import create_failure_outcome

PULL_FAILED = ('Creating cluster "gcs-import" ...\n'
               ' \u2717 Ensuring node image (kindest/node:v1.31.0) \U0001f5bc\n'
               'ERROR: failed to create cluster: failed to pull image "kindest/node:v1.31.0": command '
               '"docker pull kindest/node:v1.31.0" failed with error: exit status 1\n'
               'Command Output: Error response from daemon: Get "https://registry-1.docker.io/v2/": '
               'dial tcp: lookup registry-1.docker.io: no such host\n')
IMAGE_NOT_FOUND = ("ERROR: failed to create cluster: image kindest/node:v0.0.0 not found locally "
                   "and cannot be fetched\n")
NAME_TAKEN = 'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "gcs-import"\n'


@pytest.mark.parametrize("output", [PULL_FAILED, IMAGE_NOT_FOUND], ids=["pull failed", "image not found"])
def test_unpullable_node_image_skips_outside_ci_with_kinds_error(output):
    outcome, reason = create_failure_outcome(output, ci=False)
    assert outcome == "skip"
    assert reason.startswith("kind cannot get its node image") and output.strip()[-100:] in reason


@pytest.mark.parametrize("output", [PULL_FAILED, IMAGE_NOT_FOUND], ids=["pull failed", "image not found"])
def test_unpullable_node_image_fails_in_ci(output):
    outcome, message = create_failure_outcome(output, ci=True)
    assert outcome == "fail"
    assert "CI=true" in message and output.strip()[-100:] in message


@pytest.mark.parametrize("ci", [False, True])
def test_any_other_create_failure_fails(ci):
    outcome, message = create_failure_outcome(NAME_TAKEN, ci=ci)
    assert outcome == "fail"
    assert message.startswith("kind create cluster failed") and "already exist" in message
