"""Shared fixtures: the local emulators (started once per session) and per-test buckets and datasets.

Tests are grouped by folder, and each folder's tests get its marker:
``tests/unit`` (no services), ``tests/emulators`` (GCS and BigQuery emulators), ``tests/faults``
(the emulators, with crashes, races and outages injected),
``tests/docker`` (Docker engine and worker image), ``tests/kind`` (a kind cluster).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.environment import environment
from localdev.services import LocalServices, pubsub_emulator_binary, run_local_services

_FOLDER_MARKERS = {"unit": "unit", "emulators": "emulators", "faults": "faults", "docker": "docker", "kind": "kind"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, _FOLDER_MARKERS[folder]))


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    """gcp-storage-emulator and bqemulator on free loopback ports behind the conformance proxy
    (``svc.conformance``: Google's strict answers); their env is set for this process."""
    workdir = tmp_path_factory.mktemp("emulators")
    # CONFORMANCE_PROXY=0 only to measure the proxy's own cost; tests that use `conformance` then fail
    with run_local_services(workdir=workdir, conformance=os.environ.get("CONFORMANCE_PROXY", "1") != "0") as svc, \
            environment(svc.env()):
        yield svc


@pytest.fixture(scope="session")
def _notification_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    """fake-gcs-server publishing Cloud Storage notifications to Google's Pub/Sub emulator, and bqemulator reading
    fake-gcs-server's files, both behind the conformance proxy; started once, for the notification tests only
    (the other tests keep ``services``; Pub/Sub is reached directly through ``PUBSUB_EMULATOR_HOST``).

    Without the Pub/Sub emulator the tests that need it fail under ``CI=true`` and skip elsewhere, naming the fix.
    """
    if pubsub_emulator_binary() is None:
        reason = ("the Pub/Sub emulator is not installed: apt-get install google-cloud-cli-pubsub-emulator "
                  "(or gcloud components install pubsub-emulator, or set PUBSUB_EMULATOR_BIN)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("notification-emulators")
    with run_local_services(workdir=workdir, gcs_server="fake-gcs-server", notifications=True,
                            conformance=True) as svc:
        yield svc


@pytest.fixture
def notification_services(_notification_stack: LocalServices) -> Iterator[LocalServices]:
    """The notification stack, its env set for this test only (``services``' env, if set, is restored after);
    its conformance proxy is reset after the test, as ``services``' is."""
    with environment(_notification_stack.env()):
        yield _notification_stack
    if _notification_stack.conformance is not None:
        _notification_stack.conformance.reset()


@pytest.fixture
def bq_client_for_notifications(notification_services: LocalServices):
    from worker.bigquery_client import bigquery_client

    return bigquery_client(project_id=notification_services.project_id)


@pytest.fixture(autouse=True)
def _conformance_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with the proxy's clock, chaos and marks reset (only for tests using the services)."""
    yield
    if "services" in request.fixturenames:
        proxy = request.getfixturevalue("services").conformance
        if proxy is not None:
            proxy.reset()


@pytest.fixture
def conformance(services: LocalServices):
    """The conformance proxy in front of the emulators (see :mod:`localdev.conformance`)."""
    assert services.conformance is not None
    return services.conformance


_counter = itertools.count()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A short name unique to this test, usable as a bucket, dataset or asset name."""
    return f"t{next(_counter)}_{os.getpid()}"


@pytest.fixture
def gcs_client(services: LocalServices):
    from worker.core.gcs import storage_client

    return storage_client(project_id=services.project_id)


@pytest.fixture
def bq_client(services: LocalServices):
    from worker.bigquery_client import bigquery_client

    return bigquery_client(project_id=services.project_id)


@pytest.fixture
def bucket(gcs_client, unique_name: str):
    """A new, empty bucket for this test."""
    return gcs_client.create_bucket(unique_name.replace("_", "-"))
