"""Requester Pays on the Pipes GCS channel, without GCS: the billed project reaches every bucket handle of
both sides and the worker's bootstrap parameters."""

from __future__ import annotations

from orchestrator.launchers.from_env import launcher_from_env
from orchestrator.launchers.pipes_gcs import PipesGCSChannel, PrefixedGCSMessageReader
from worker.core.pipes_channel import USER_PROJECT_PARAM, ObjectsOnlyGCSClient


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def bucket(self, name: str, user_project: str | None = None) -> tuple[str, str | None]:
        self.calls.append((name, user_project))
        return name, user_project


def test_the_objects_only_client_makes_billed_bucket_handles():
    client = _Client()
    assert ObjectsOnlyGCSClient(client, user_project="bill-me").get_bucket("pipes") == ("pipes", "bill-me")
    assert ObjectsOnlyGCSClient(client).get_bucket("pipes") == ("pipes", None)


def test_the_reader_passes_the_billed_project_to_the_worker():
    reader = PrefixedGCSMessageReader(prefix="p", bucket="pipes", client=_Client(), user_project="bill-me")
    with reader.get_params() as params:
        assert params[USER_PROJECT_PARAM] == "bill-me" and params["key_prefix"].startswith("p/messages/")
    with PrefixedGCSMessageReader(prefix="p", bucket="pipes", client=_Client()).get_params() as params:
        assert USER_PROJECT_PARAM not in params


def test_the_billing_project_comes_from_the_environment():
    launcher = launcher_from_env({"GCS_IMPORT_LAUNCHER": "k8s", "GCS_IMPORT_PIPES_GCS_BUCKET": "pipes",
                                  "GCS_IMPORT_PIPES_GCS_BILLING_PROJECT": "bill-me"})
    assert launcher.pipes_gcs == PipesGCSChannel(bucket="pipes", billing_project="bill-me")
