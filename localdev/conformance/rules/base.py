"""The shape of one conformance rule: a behaviour Google documents and the emulators lack."""

from __future__ import annotations

from typing import ClassVar

from localdev.conformance.exchange import Exchange, Reply, Service
from localdev.conformance.world import World


class Rule:
    """One documented behaviour, enforced on requests for ``service``.

    ``before`` may answer a request itself (refuse it) or rewrite it before it is forwarded;
    ``after`` may change the emulator's answer. ``doc`` links Google's page; ``assumed`` says what
    the rule assumes where Google does not document it (an exact error payload, say).
    """

    name: ClassVar[str]
    doc: ClassVar[str]
    service: ClassVar[Service]
    assumed: ClassVar[str] = ""

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        return reply

    def reset(self) -> None:
        """Forget per-test state (marks a test set); called between tests."""
