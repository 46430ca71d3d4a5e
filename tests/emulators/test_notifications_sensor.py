"""The notifications sensor end to end: fake-gcs-server -> Pub/Sub emulator -> the sensor -> a run -> rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from localdev.samples import drop_daily_scores, upload
from tests.emulators.notification_helpers import NotificationTicker, notifications_subscription
from tests.emulators.orchestrator_helpers import make_asset_config
from worker.core.gcs import storage_client

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(4)]


def test_an_upload_requests_its_partition_and_the_run_loads_it(notification_services, bq_client_for_notifications,
                                                               unique_name) -> None:
    gcs = storage_client(project_id=notification_services.project_id)
    bucket = gcs.create_bucket(unique_name.replace("_", "-"))
    with notifications_subscription(notification_services, unique_name) as subscription:
        spec = make_asset_config(unique_name, bucket.name, notifications_subscription=subscription,
                                 retention_days=36_500)
        ticker = NotificationTicker(spec)
        drop_daily_scores(bucket, path_base="passport", days=[DAYS[1]], rows_per_file=4)
        upload(bucket, "passport/README.txt", b"not data")

        (request,) = ticker.tick()

        assert request.partition_key == "2024-05-02"
        assert ticker.last_tick["messages"] == 2
        assert ticker.last_tick["acknowledged"] == 2
        assert ticker.last_tick["outcomes"] == {"not_matching": 1, "request": 1}
        assert ticker.last_tick["oldest_message_age_seconds"] >= 0
        result = ticker.materialize(request)
        assert result.success
        rows = list(bq_client_for_notifications.query(f"SELECT COUNT(*) AS n FROM `{spec.clean_table_id}`").result())
        assert rows[0]["n"] == 4
        assert ticker.tick() == []  # acknowledged: nothing is delivered again
        assert ticker.last_tick["messages"] == 0


MARKER = r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/_SUCCESS"


def test_without_a_gate_a_tick_sends_no_gcs_request_and_with_one_it_waits_for_the_marker(
        notification_services, unique_name) -> None:
    from localdev.benchmarks.http_counting import CountingProxy
    from localdev.environment import environment

    gcs = storage_client(project_id=notification_services.project_id)
    bucket = gcs.create_bucket(unique_name.replace("_", "-"))
    with notifications_subscription(notification_services, unique_name + "-plain") as plain_path, \
            notifications_subscription(notification_services, unique_name + "-gated") as gated_path, \
            CountingProxy(notification_services.gcs_endpoint) as counting, \
            environment({"STORAGE_EMULATOR_HOST": counting.endpoint}):
        plain = NotificationTicker(make_asset_config(unique_name, bucket.name, notifications_subscription=plain_path))
        gated = NotificationTicker(make_asset_config(unique_name + "g", bucket.name,
                                                     notifications_subscription=gated_path,
                                                     complete_when={"marker_match": MARKER}))
        drop_daily_scores(bucket, path_base="passport", days=[DAYS[2]], rows_per_file=3)
        counting.take()

        assert [r.partition_key for r in plain.tick()] == ["2024-05-03"]
        assert counting.take() == []  # no list, no get: the notification said everything
        assert gated.tick() == []  # marker missing: the interval waits in the cursor
        listed = counting.take()
        assert [(r.method, r.path.split("?")[0]) for r in listed] == [("GET", f"/storage/v1/b/{bucket.name}/o")]
        assert gated.last_tick["waiting"] == 1

        upload(bucket, "passport/2024-05-03/_SUCCESS", b"")
        (request,) = gated.tick()
        assert request.partition_key == "2024-05-03"
        assert request.tags["gcs_import/trigger"] == "notifications events=2"  # the data file's and the marker's
        assert gated.last_tick["waiting"] == 0
        assert plain.tick() == [] and plain.last_tick["outcomes"] == {"not_matching": 1}  # plain: no marker


def test_a_subscription_that_does_not_exist_fails_the_tick_naming_it_and_the_fix(notification_services,
                                                                                 unique_name) -> None:
    missing = f"projects/{notification_services.project_id}/subscriptions/{unique_name.replace('_', '-')}-never-made"
    ticker = NotificationTicker(make_asset_config(unique_name, "some-bucket", notifications_subscription=missing))
    with pytest.raises(Exception, match=rf"subscription {missing} not found .*k8s/gcs-notifications-setup\.sh"):
        ticker.tick()


def test_a_quiet_period_passes_without_an_event_and_a_later_tick_requests_the_interval(notification_services,
                                                                                       unique_name) -> None:
    gcs = storage_client(project_id=notification_services.project_id)
    bucket = gcs.create_bucket(unique_name.replace("_", "-"))
    with notifications_subscription(notification_services, unique_name) as subscription:
        ticker = NotificationTicker(make_asset_config(unique_name, bucket.name, notifications_subscription=subscription,
                                                      complete_when={"quiet_for": "3s"}))
        drop_daily_scores(bucket, path_base="passport", days=[DAYS[3]], rows_per_file=2)
        assert ticker.tick() == []  # just updated: it waits for 3 quiet seconds
        assert ticker.last_tick["waiting"] == 1 and ticker.last_tick["messages"] == 1
        time.sleep(3)
        (request,) = ticker.tick()  # no message arrives; the cursor's recheck time has passed
        assert ticker.last_tick["messages"] == 0
        assert request.partition_key == "2024-05-04"
