"""k8s/gcs-notifications-setup.sh in --dry-run: the commands it would run, and the arguments it refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "k8s" / "gcs-notifications-setup.sh"
ARGS = ["--project", "oso-prod", "--bucket", "oso-drops", "--topic", "oso-drops-events",
        "--subscription", "passport-drops", "--dry-run"]


def run(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *ARGS, *extra], capture_output=True, text=True, check=False)


def test_the_set_up_grants_publish_on_the_topic_and_subscribe_on_the_subscription_only() -> None:
    done = run("--object-prefix", "passport/")
    assert done.returncode == 0, done.stderr
    commands = done.stdout.splitlines()
    assert "gcloud pubsub topics create oso-drops-events --project=oso-prod" in commands
    assert ("gcloud pubsub topics add-iam-policy-binding oso-drops-events --project=oso-prod "
            "--member=serviceAccount:SERVICE_AGENT --role=roles/pubsub.publisher") in commands
    assert ("gcloud storage buckets notifications create gs://oso-drops --topic=projects/oso-prod/topics/oso-drops-events "
            "--event-types=OBJECT_FINALIZE,OBJECT_DELETE --payload-format=json --skip-topic-setup "
            "--object-prefix=passport/") in commands
    assert ("gcloud pubsub subscriptions create passport-drops --project=oso-prod "
            "--topic=projects/oso-prod/topics/oso-drops-events --ack-deadline=60 --message-retention-duration=7d "
            "--expiration-period=never") in commands
    grants = [c for c in commands if "add-iam-policy-binding" in c]
    assert grants[-1] == ("gcloud pubsub subscriptions add-iam-policy-binding passport-drops --project=oso-prod "
                          "--member=serviceAccount:gcs-import-code-server@oso-prod.iam.gserviceaccount.com "
                          "--role=roles/pubsub.subscriber")
    assert len(grants) == 2  # nothing project-wide
    assert "projects/oso-prod/subscriptions/passport-drops" in done.stderr


@pytest.mark.parametrize(("extra", "words"), [
    (["--ack-deadline", "30"], "at least twice the sensor's"),
    (["--ack-deadline", "601"], "60 to 600"),
    (["--ack-deadline", "1m"], "whole seconds"),
    (["--color", "red"], "unknown argument --color"),
])
def test_arguments_it_refuses_are_named(extra, words) -> None:
    done = run(*extra)
    assert done.returncode == 2 and words in done.stderr


def test_a_missing_argument_is_named() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--project", "p", "--dry-run"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "--bucket is required" in done.stderr


def test_the_default_ack_deadline_is_at_least_twice_the_sensors_interval() -> None:
    from orchestrator.factories.notifications_sensor import DEFAULT_MINIMUM_INTERVAL_SECONDS

    assert "ack_deadline=60" in SCRIPT.read_text()
    assert f"SENSOR_INTERVAL_SECONDS={DEFAULT_MINIMUM_INTERVAL_SECONDS}" in SCRIPT.read_text()
    assert 2 * DEFAULT_MINIMUM_INTERVAL_SECONDS <= 60
