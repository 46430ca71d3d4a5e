"""The notifications sensor: request the partitions that Cloud Storage notifications say changed.

``{name}_gcs_notifications_sensor`` exists when the spec sets ``notifications_subscription``. A tick pulls
the subscription synchronously (at most ``max_messages_per_tick`` messages), decodes each Cloud Storage
notification, decides it as the worker matches names (:func:`worker.core.notifications.decide_event`), and
requests one run per changed interval, at any age. Every message is acknowledged, and counted, at the END
of the tick, after its run requests are built: a tick that fails before leaves its messages to be
redelivered. A lost message (acknowledged or dropped before a tick saw it) is found by
``{name}_new_files_sensor`` within ``sensor_lookback``.

Without ``complete_when`` a tick sends no GCS request at all; with it, the intervals it would request are
checked with one narrowed listing (:func:`~orchestrator.factories.interval_completeness.check_completeness`),
and incomplete ones wait in the cursor (:mod:`orchestrator.factories.notifications_cursor`).

The tick logs, and keeps in its cursor's ``last_tick``, how many messages it handled and the age of the
oldest one (the backlog signal). Permissions: ``roles/pubsub.subscriber`` on that subscription only
(``k8s/gcs-notifications-setup.sh``); ``PUBSUB_EMULATOR_HOST`` points the client at the emulator.
References: https://cloud.google.com/pubsub/docs/pull#synchronous_pull,
https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1#pullrequest,
https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1#acknowledgerequest,
https://cloud.google.com/storage/docs/pubsub-notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from orchestrator.factories.interval_completeness import check_completeness
from orchestrator.factories.notifications_cursor import NotificationsCursor, TickCollection, collect_events, finish_tick
from orchestrator.factories.partitions import partition_run_request
from worker.core.gcs import storage_client
from worker.core.notifications import NotificationError, StorageEvent, decode_notification, parse_subscription_path
from worker.core.spec import ImportSpec

#: Dagster's default sensor interval; the subscription's ack deadline is at least twice it (the set-up: 60 s).
DEFAULT_MINIMUM_INTERVAL_SECONDS = 30
#: Messages one tick pulls at most (a pull returns 1,000 at most; the rest wait for the next tick).
DEFAULT_MAX_MESSAGES_PER_TICK = 1_000
#: How long a pull waits for the first message (an empty subscription answers after this at the latest).
DEFAULT_PULL_TIMEOUT_SECONDS = 5.0
#: Acknowledge ids per request (an AcknowledgeRequest is limited to 512 kB; an ack id is under 200 bytes).
ACK_BATCH = 1_000


class NotificationsUnavailable(RuntimeError):
    """The subscription cannot be pulled: missing or not permitted (the message names it and the fix)."""


@dataclass(frozen=True)
class PulledMessage:
    """One pulled message: its ack id, the decoded event (``None``: not readable) and when it was published."""

    ack_id: str
    event: StorageEvent | None
    published: datetime | None
    problem: str = ""


def subscriber_client() -> Any:
    """A ``SubscriberClient``: Application Default Credentials (on GKE the code server's Workload Identity),
    or the emulator at ``PUBSUB_EMULATOR_HOST`` (the client then connects without credentials)."""
    from google.cloud import pubsub_v1  # the orchestrator's dependency only: the worker never pulls

    return pubsub_v1.SubscriberClient()


def pull_messages(subscriber: Any, subscription: str, *, max_messages: int,
                  timeout: float = DEFAULT_PULL_TIMEOUT_SECONDS) -> list[PulledMessage]:
    """Up to ``max_messages`` messages of ``subscription``, decoded.

    Pulls until the bound, or until a pull returns fewer messages than asked for (the rest are left for the
    next tick), or none within ``timeout`` (an empty subscription: ``DeadlineExceeded`` means no messages).

    Raises:
        NotificationsUnavailable: the subscription is missing or not readable (names it and the fix); nothing
            was acknowledged.
        google.api_core.exceptions.GoogleAPICallError: Pub/Sub answered another error or is unreachable.
    """
    from google.api_core import exceptions as google_exceptions

    pulled: list[PulledMessage] = []
    while len(pulled) < max_messages:
        asked = min(1_000, max_messages - len(pulled))
        try:
            response = subscriber.pull(request={"subscription": subscription, "max_messages": asked}, timeout=timeout)
        except google_exceptions.DeadlineExceeded:
            break
        except google_exceptions.NotFound as exc:
            raise NotificationsUnavailable(
                f"subscription {subscription} not found ({exc.message}): create it and the bucket's notification "
                "(k8s/gcs-notifications-setup.sh), or fix notifications_subscription") from exc
        except google_exceptions.PermissionDenied as exc:
            raise NotificationsUnavailable(
                f"pulling {subscription} was refused ({exc.message}): grant the code server's service account "
                "roles/pubsub.subscriber on that subscription (k8s/gcs-notifications-setup.sh)") from exc
        for received in response.received_messages:
            pulled.append(_decoded(received))
        if len(response.received_messages) < asked:
            break
    return pulled


def _decoded(received: Any) -> PulledMessage:
    message = received.message
    published = message.publish_time if message.publish_time else None
    try:
        event = decode_notification(dict(message.attributes), bytes(message.data))
    except NotificationError as exc:
        return PulledMessage(ack_id=received.ack_id, event=None, published=published, problem=str(exc))
    return PulledMessage(ack_id=received.ack_id, event=event, published=published)


def acknowledge(subscriber: Any, subscription: str, ack_ids: list[str]) -> tuple[int, str]:
    """Acknowledge ``ack_ids`` in batches of :data:`ACK_BATCH`: how many were acknowledged, and the error if
    a batch failed (its messages are redelivered after the ack deadline, and a later tick counts them as
    duplicates). A failed acknowledgement does not fail the tick: its run requests stand."""
    from google.api_core import exceptions as google_exceptions

    done = 0
    for i in range(0, len(ack_ids), ACK_BATCH):
        batch = ack_ids[i : i + ACK_BATCH]
        try:
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": batch})
        except (google_exceptions.GoogleAPICallError, google_exceptions.RetryError) as exc:
            return done, f"{type(exc).__name__}: {exc}"
        done += len(batch)
    return done, ""


def build_notifications_sensor(
    spec: ImportSpec,
    *,
    asset_key: dg.AssetKey,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    max_messages_per_tick: int = DEFAULT_MAX_MESSAGES_PER_TICK,
    minimum_interval_seconds: int = DEFAULT_MINIMUM_INTERVAL_SECONDS,
    pull_timeout_seconds: float = DEFAULT_PULL_TIMEOUT_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """``{name}_gcs_notifications_sensor`` for a spec with ``notifications_subscription``.

    Raises:
        ValueError: the spec has no ``notifications_subscription``, or ``max_messages_per_tick`` is not 1 or more.
    """
    if spec.notifications_subscription is None:
        raise ValueError(f"{spec.name!r} has no notifications_subscription: set it to the subscription's full path")
    if isinstance(max_messages_per_tick, bool) or not isinstance(max_messages_per_tick, int) or max_messages_per_tick < 1:
        raise ValueError(f"max_messages_per_tick is {max_messages_per_tick!r}: give 1 or more")
    subscription = parse_subscription_path(spec.notifications_subscription).path

    @dg.sensor(
        name=f"{spec.name}_gcs_notifications_sensor",
        asset_selection=[asset_key],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Requests a run of {asset_key.to_user_string()} for each partition that Cloud Storage notifications "
            f"of gs://{spec.bucket_name}/{spec.object_prefix} (pulled from {subscription}) say changed, at any age."
        ),
    )
    def notifications_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = NotificationsCursor.from_json(context.cursor)
        with subscriber_client() as subscriber:
            pulled = pull_messages(subscriber, subscription, max_messages=max_messages_per_tick,
                                   timeout=pull_timeout_seconds)
            now = datetime.now(UTC)  # after the pull: a message's age is never negative
            collection = collect_events(spec, cursor, [m.event for m in pulled], now=now)
            result, next_cursor = _tick_result(spec, context, collection, pulled=pulled, now=now,
                                               asset_key=asset_key, partitions_def=partitions_def)
            # at the end: the run requests are built, so a redelivery after a crash above loses nothing
            acknowledged, problem = acknowledge(subscriber, subscription, [m.ack_id for m in pulled])
        next_cursor.last_tick["acknowledged"] = acknowledged
        if problem:
            context.log.warning(f"acknowledging failed after {acknowledged} of {len(pulled)} messages ({problem}): "
                                "Pub/Sub redelivers the rest after the ack deadline; they are counted as duplicates")
        context.log.info(_summary(next_cursor.last_tick))
        if not result:
            return dg.SensorResult(skip_reason=dg.SkipReason(_summary(next_cursor.last_tick)), cursor=next_cursor.to_json())
        return dg.SensorResult(run_requests=result, cursor=next_cursor.to_json())

    return notifications_sensor


def _tick_result(spec: ImportSpec, context: dg.SensorEvaluationContext, collection: TickCollection, *,
                 pulled: list[PulledMessage], now: datetime, asset_key: dg.AssetKey,
                 partitions_def: dg.TimeWindowPartitionsDefinition) -> tuple[list[dg.RunRequest], NotificationsCursor]:
    """The run requests of this tick's collection and the next cursor (with ``last_tick``'s figures)."""
    completeness = None
    if spec.complete_when is not None and collection.candidates:
        # only with a gate: without one a tick sends no GCS request (the bucket may hold millions of names)
        completeness = check_completeness(storage_client(project_id=spec.project_id), spec, collection.candidates,
                                          now=now)
    requests, waiting, reasons, dropped = finish_tick(collection, completeness)
    for start, reason in sorted(reasons.items()):
        context.log.info(f"interval {start.isoformat()} waits: {reason}")
    if dropped:
        context.log.warning(f"{len(dropped)} waiting intervals dropped (more than the cursor keeps), e.g. {dropped[:3]}; "
                            f"{spec.name}_new_files_sensor still requests them once complete")
    for message in pulled:
        if message.event is None:
            context.log.warning(f"message not read, acknowledged: {message.problem}")
    run_requests = [partition_run_request(partitions_def, request.interval_start, asset_key=asset_key,
                                          run_key_suffix=f"n{request.digest}", trigger=f"notifications events={request.events}")
                    for request in requests]
    published = [m.published for m in pulled if m.published is not None]
    oldest = max(0.0, (now - min(published)).total_seconds()) if published else None
    last_tick = {
        "at": now.isoformat(),
        "messages": len(pulled),
        "oldest_message_age_seconds": round(oldest, 3) if oldest is not None else None,
        "requested": len(run_requests),
        "waiting": len(waiting),
        "outcomes": dict(sorted(collection.outcomes.items())),
    }
    return run_requests, NotificationsCursor(seen=collection.seen, waiting=waiting, last_tick=last_tick)


def _summary(last_tick: dict[str, Any]) -> str:
    age = last_tick.get("oldest_message_age_seconds")
    return (f"{last_tick.get('messages', 0)} messages handled ({last_tick.get('acknowledged', 0)} acknowledged), "
            f"oldest {'-' if age is None else f'{age:.1f} s'} old; {last_tick.get('requested', 0)} partitions "
            f"requested, {last_tick.get('waiting', 0)} waiting; {last_tick.get('outcomes', {})}")
