"""Notification delivery faults against the real emulators (fake-gcs-server -> Pub/Sub emulator -> the sensor).

Pub/Sub delivers at least once and in no guaranteed order, and a message can be lost to the sensor (another
consumer acknowledged it, or it expired). Each test makes its fault happen on the real emulator, asserts it
happened, and checks what the sensors request and what the runs load.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from localdev.samples import drop_daily_scores, encode_rows, score_rows, upload
from tests.emulators.notification_helpers import (
    NotificationTicker,
    notifications_subscription,
    pull_messages,
    republish,
)
from tests.emulators.orchestrator_helpers import make_asset_config
from worker.core.gcs import storage_client

DAYS = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
#: Several files a day (scores.parquet, scores_b.parquet ...), so a delete leaves the interval with data.
FILES = r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores[a-z_]*\.parquet"


def clean_rows(bq, spec) -> int:
    return next(iter(bq.query(f"SELECT COUNT(*) AS n FROM `{spec.clean_table_id}`").result()))["n"]


def new_bucket(services, unique_name):
    return storage_client(project_id=services.project_id).create_bucket(unique_name.replace("_", "-"))


def test_a_duplicated_message_requests_nothing_new(notification_services, unique_name) -> None:
    bucket = new_bucket(notification_services, unique_name)
    with notifications_subscription(notification_services, unique_name) as subscription, \
            notifications_subscription(notification_services, unique_name + "-spy") as spy:
        ticker = NotificationTicker(make_asset_config(unique_name, bucket.name, notifications_subscription=subscription))
        drop_daily_scores(bucket, path_base="passport", days=[DAYS[1]], rows_per_file=2)
        (first,) = ticker.tick()
        captured = pull_messages(spy, count=1)  # the same notification, as the spy subscription got it

        republish(notification_services, captured * 2)  # delivered twice more
        assert ticker.tick() == []

        assert ticker.last_tick["messages"] == 2  # the fault fired: both copies reached the sensor
        assert ticker.last_tick["outcomes"] == {"duplicate": 2}
        assert ticker.last_tick["acknowledged"] == 2  # and they are gone from the subscription
        # a tick that lost its cursor (the daemon re-evaluates after a crash) asks for the same run key,
        # which Dagster does not launch twice
        republish(notification_services, captured)
        ticker.cursors.clear()
        (again,) = ticker.tick()
        assert ticker.last_tick["messages"] == 1
        assert (again.run_key, again.partition_key) == (first.run_key, first.partition_key)


def test_a_delete_delivered_before_its_finalize_leaves_the_interval_as_gcs_holds_it(
        notification_services, bq_client_for_notifications, unique_name) -> None:
    bucket = new_bucket(notification_services, unique_name)
    day = DAYS[2]
    with notifications_subscription(notification_services, unique_name + "-spy") as spy:
        upload(bucket, f"passport/{day:%Y-%m-%d}/scores.parquet",
               encode_rows(score_rows(interval_start=day, count=3), fmt="PARQUET"))
        upload(bucket, f"passport/{day:%Y-%m-%d}/scores_b.parquet",
               encode_rows(score_rows(interval_start=day, count=2, seed=1), fmt="PARQUET"))
        bucket.blob(f"passport/{day:%Y-%m-%d}/scores_b.parquet").delete()
        captured = pull_messages(spy, count=3)
    order = [(m.attributes["eventType"], m.attributes["objectId"].rsplit("/", 1)[1]) for m in captured]
    assert sorted(order) == [("OBJECT_DELETE", "scores_b.parquet"), ("OBJECT_FINALIZE", "scores.parquet"),
                             ("OBJECT_FINALIZE", "scores_b.parquet")]
    delete = next(m for m in captured if m.attributes["eventType"] == "OBJECT_DELETE")
    finalizes = [m for m in captured if m is not delete]
    with notifications_subscription(notification_services, unique_name) as subscription:
        spec = make_asset_config(unique_name, bucket.name, file_match=FILES, notifications_subscription=subscription,
                                 retention_days=36_500)
        ticker = NotificationTicker(spec)

        republish(notification_services, [delete])  # the fault: the delete arrives first, alone
        (on_delete,) = ticker.tick()
        assert ticker.last_tick["outcomes"] == {"request": 1}  # a delete inside retention requests its interval
        assert ticker.materialize(on_delete).success
        assert clean_rows(bq_client_for_notifications, spec) == 3  # the run read GCS: scores_b is gone

        republish(notification_services, finalizes)  # the finalizes arrive late
        (late,) = ticker.tick()
        assert late.partition_key == on_delete.partition_key and late.run_key != on_delete.run_key
        assert ticker.materialize(late).success
        assert clean_rows(bq_client_for_notifications, spec) == 3  # a late finalize does not bring a deleted file back


def test_an_overwrite_delivered_out_of_order_requests_only_for_the_new_generation(notification_services,
                                                                                  unique_name) -> None:
    bucket = new_bucket(notification_services, unique_name)
    name = f"passport/{DAYS[3]:%Y-%m-%d}/scores.parquet"
    with notifications_subscription(notification_services, unique_name + "-spy") as spy:
        upload(bucket, name, encode_rows(score_rows(interval_start=DAYS[3], count=1), fmt="PARQUET"))
        upload(bucket, name, encode_rows(score_rows(interval_start=DAYS[3], count=2), fmt="PARQUET"))
        captured = pull_messages(spy, count=3)
    overwrite_delete = [m for m in captured if m.attributes.get("overwrittenByGeneration")]
    assert len(overwrite_delete) == 1  # the fault's message: the delete the overwrite caused
    newest = next(m for m in captured if m.attributes.get("overwroteGeneration"))
    with notifications_subscription(notification_services, unique_name) as subscription:
        ticker = NotificationTicker(make_asset_config(unique_name, bucket.name, notifications_subscription=subscription))
        republish(notification_services, [newest, *overwrite_delete])  # the new generation before the delete
        (request,) = ticker.tick()
        assert ticker.last_tick["outcomes"] == {"overwritten": 1, "request": 1}
        assert request.tags["gcs_import/trigger"] == "notifications events=1"


def test_a_lost_message_is_reconciled_by_the_listing_sensor(notification_services, bq_client_for_notifications,
                                                           unique_name) -> None:
    bucket = new_bucket(notification_services, unique_name)
    with notifications_subscription(notification_services, unique_name) as subscription:
        lookback = f"{(datetime.now(UTC) - DAYS[4]).days + 2}d"  # reaches back to DAYS[4]
        spec = make_asset_config(unique_name, bucket.name, notifications_subscription=subscription,
                                 sensor_lookback=lookback)
        ticker = NotificationTicker(spec)
        drop_daily_scores(bucket, path_base="passport", days=[DAYS[4]], rows_per_file=6)
        (lost,) = pull_messages(subscription, count=1)  # the fault: acknowledged before the sensor saw it
        assert lost.attributes["objectId"] == "passport/2024-05-05/scores.parquet"

        assert ticker.tick() == []
        assert ticker.last_tick["messages"] == 0

        (reconciled,) = ticker.tick(f"{spec.name}_new_files_sensor")
        assert reconciled.partition_key == "2024-05-05"
        assert ticker.materialize(reconciled).success
        assert clean_rows(bq_client_for_notifications, spec) == 6
