"""What retention does with a loaded object past ``retention_days`` (spec fields ``retention_action``,
``archive_bucket``, ``archive_prefix``): delete it, or archive it first.

``archive`` rewrites each object server-side to ``gs://{archive_bucket}/{archive_prefix}{name}`` (the
archive copy is never overwritten), verifies the copy, records its generation, and only then deletes the
original. None of these fields changes what a load reads, so they stay out of the load digest.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ArchiveTarget", "RetentionAction"]


class RetentionAction(enum.Enum):
    """What retention does with a loaded object past ``retention_days``."""

    #: Delete it from the drop bucket (its rows stay in BigQuery).
    delete = "delete"
    #: Copy it to ``archive_bucket`` (verified), then delete it from the drop bucket.
    archive = "archive"


@dataclass(frozen=True, kw_only=True)
class ArchiveTarget:
    """Where an archived object goes: ``gs://{bucket}/{prefix}{name}``."""

    bucket: str
    prefix: str = ""

    def object_name(self, name: str) -> str:
        """The archive copy's name for the drop object ``name``."""
        return f"{self.prefix}{name}"

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{self.object_name(name)}"
