"""Cloud Storage notifications through Pub/Sub (spec field ``notifications_subscription``): the subscription path.

The orchestrator's notifications sensor pulls the subscription; this module holds what both sides agree
on about it (the path's form). References:
https://cloud.google.com/storage/docs/pubsub-notifications,
https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions (resource names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SubscriptionPath", "parse_subscription_path"]

# Project ids (6-30 lowercase letters, digits, dashes; an optional `domain:` prefix) and subscription ids
# ("3 to 255 characters, start with a letter, letters, numbers, dashes, periods, underscores, tildes, percent
# signs or plus signs; not starting with goog").
_SUBSCRIPTION_PATH_RE = re.compile(
    r"^projects/(?P<project>(?:[a-z][a-z0-9.\-]*[a-z0-9]:)?[a-z][a-z0-9\-]{4,28}[a-z0-9])"
    r"/subscriptions/(?P<subscription>[A-Za-z][A-Za-z0-9\-_.~+%]{2,254})$"
)


@dataclass(frozen=True)
class SubscriptionPath:
    """A Pub/Sub subscription's full resource name, split."""

    project: str
    subscription: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscription}"


def parse_subscription_path(text: str) -> SubscriptionPath:
    """``projects/{project}/subscriptions/{name}`` split into its parts.

    Raises:
        ValueError: not such a path (the message says what the form is).
    """
    found = _SUBSCRIPTION_PATH_RE.match(text) if isinstance(text, str) else None
    if found is None or found.group("subscription").lower().startswith("goog"):
        raise ValueError(f"{text!r} is not a subscription path: use projects/PROJECT_ID/subscriptions/SUBSCRIPTION_ID")
    return SubscriptionPath(project=found.group("project"), subscription=found.group("subscription"))
