"""Shared by the notification tests: a subscription on the emulator's notifications topic, and a sensor ticker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from localdev.services import LocalServices
from orchestrator.factories import IntervalGCSAsset, interval_gcs_import_asset
from orchestrator.factories.notifications_cursor import NotificationsCursor
from orchestrator.launchers import WorkerLauncher

#: The set-up's ack deadline (k8s/gcs-notifications-setup.sh): at least twice the sensor's 30 s interval.
ACK_DEADLINE_SECONDS = 60


@contextlib.contextmanager
def notifications_subscription(services: LocalServices, name: str) -> Iterator[str]:
    """A new subscription (``projects/P/subscriptions/NAME``) on the topic fake-gcs-server publishes to; deleted after."""
    from google.cloud import pubsub_v1

    path = f"projects/{services.project_id}/subscriptions/{name.replace('_', '-')}-notifications"
    with pubsub_v1.SubscriberClient() as subscriber:
        subscriber.create_subscription(request={"name": path, "topic": services.notifications_topic,
                                                "ack_deadline_seconds": ACK_DEADLINE_SECONDS})
        try:
            yield path
        finally:
            subscriber.delete_subscription(request={"subscription": path})


class NotificationTicker:
    """Evaluates one spec's sensors (by name) tick after tick, as the daemon does, carrying each cursor."""

    def __init__(self, spec: IntervalGCSAsset) -> None:
        response = interval_gcs_import_asset(spec)
        self.spec = spec
        self.asset = response.asset
        self.sensors = {s.name: s for s in response.sensors}
        self.definitions = dg.Definitions(assets=[self.asset], sensors=response.sensors,
                                          resources={"launcher": WorkerLauncher()})
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursors: dict[str, str | None] = {}

    @property
    def notifications_sensor_name(self) -> str:
        return f"{self.spec.name}_gcs_notifications_sensor"

    def tick(self, sensor_name: str | None = None) -> list[dg.RunRequest]:
        """One tick of ``sensor_name`` (default: the notifications sensor): its run requests."""
        name = sensor_name or self.notifications_sensor_name
        sensor = self.sensors[name]
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(name), sensor_name=name,
                                          definitions=self.definitions)
        data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        return list(data.run_requests or [])

    @property
    def last_tick(self) -> dict:
        return NotificationsCursor.from_json(self.cursors.get(self.notifications_sensor_name)).last_tick

    def materialize(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """Run the requested partition through Dagster (a real subprocess Pipes launch of the worker)."""
        return dg.materialize([self.asset], instance=self.instance, resources={"launcher": WorkerLauncher()},
                              selection=[self.asset.key], partition_key=request.partition_key, tags=request.tags)


def pull_messages(subscription: str, *, count: int, acknowledge: bool = True, timeout: float = 20.0) -> list:
    """``count`` messages of ``subscription`` (``PubsubMessage``), acknowledged unless told otherwise.

    Raises AssertionError when fewer arrive within ``timeout`` seconds.
    """
    import time

    from google.api_core import exceptions as google_exceptions
    from google.cloud import pubsub_v1

    received = []
    deadline = time.monotonic() + timeout
    with pubsub_v1.SubscriberClient() as subscriber:
        while len(received) < count and time.monotonic() < deadline:
            try:
                response = subscriber.pull(request={"subscription": subscription, "max_messages": count - len(received)},
                                           timeout=5)
            except google_exceptions.DeadlineExceeded:
                continue
            if acknowledge and response.received_messages:
                subscriber.acknowledge(request={"subscription": subscription,
                                                "ack_ids": [m.ack_id for m in response.received_messages]})
            received.extend(m.message for m in response.received_messages)
    assert len(received) == count, f"{len(received)} of {count} messages arrived on {subscription}"
    return received


def republish(services: LocalServices, messages: list) -> None:
    """Publish ``messages`` again, in the order given, with their data and attributes (a duplicate delivery)."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    for message in messages:
        publisher.publish(services.notifications_topic, bytes(message.data), **dict(message.attributes)).result(timeout=30)
