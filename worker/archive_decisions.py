"""Archive retention's decisions (pure): which archive copy is trusted, what a dry run would move, what is said.

An object is deleted from the drop bucket only after its copy in the archive bucket is *verified*: same size and
same CRC32C as the loaded generation (GCS computes CRC32C for every object:
https://cloud.google.com/storage/docs/data-validation#json-api). A copy that exists with other content is never
trusted and never overwritten: the original stays and the run names both URIs and the fix.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from worker.core.records import LoadedObject
from worker.core.retention_action import ArchiveTarget

__all__ = ["ArchiveMove", "ArchiveResult", "ArchiveVerdict", "Fingerprint", "judge_copy", "plan_moves",
           "untrusted_line"]


@dataclass(frozen=True)
class Fingerprint:
    """What verification compares: an object's size and its base64 CRC32C (None when GCS gave none)."""

    size: int
    crc32c: str | None

    def same_content(self, other: Fingerprint) -> bool:
        """Equal size and CRC32C; an unknown CRC32C on either side is never equal (nothing is trusted unread)."""
        return self.crc32c is not None and other.crc32c is not None and (self.size, self.crc32c) == (
            other.size, other.crc32c)

    def describe(self) -> str:
        return f"{self.size} bytes, crc32c {self.crc32c or 'unknown'}"


class ArchiveVerdict(enum.Enum):
    """What happened to one object past retention when retention archives."""

    #: Rewritten by this run; the copy verified.
    archived = "archived"
    #: A copy left by an earlier, interrupted run (or a retried rewrite) found and verified.
    verified_existing = "verified_existing"
    #: A copy exists with other content: never trusted, never overwritten; the original is kept.
    existing_differs = "existing_differs"
    #: The rewrite produced a copy whose size or CRC32C differs from the source's: the original is kept.
    copy_differs = "copy_differs"
    #: The source is no longer the loaded generation (re-uploaded or gone): nothing archived, nothing deleted.
    source_changed = "source_changed"

    @property
    def trusted(self) -> bool:
        """The archive copy is verified: the original may be deleted."""
        return self in (ArchiveVerdict.archived, ArchiveVerdict.verified_existing)


@dataclass(frozen=True)
class ArchiveResult:
    """One object's archiving: the verdict, where its copy is, the copy's generation (when one was read)."""

    obj: LoadedObject
    verdict: ArchiveVerdict
    target_uri: str
    archive_generation: int | None = None
    #: One line for the run's log when the original is kept because of the copy (empty otherwise).
    note: str = ""


@dataclass(frozen=True)
class ArchiveMove:
    """What a dry run shows: an object and where archiving would copy it."""

    source_uri: str
    target_uri: str
    size: int


def judge_copy(*, source: Fingerprint, copy: Fingerprint, rewritten_now: bool) -> ArchiveVerdict:
    """The verdict on an archive copy: trusted only when its size and CRC32C equal the loaded generation's.

    ``rewritten_now``: this run's rewrite wrote the copy (otherwise it existed already)."""
    if source.same_content(copy):
        return ArchiveVerdict.archived if rewritten_now else ArchiveVerdict.verified_existing
    return ArchiveVerdict.copy_differs if rewritten_now else ArchiveVerdict.existing_differs


def plan_moves(objects: Iterable[LoadedObject], *, bucket: str, target: ArchiveTarget) -> list[ArchiveMove]:
    """Each object's move, in the given order (for the dry run and its metadata)."""
    return [ArchiveMove(source_uri=f"gs://{bucket}/{obj.name}", target_uri=target.uri(obj.name), size=obj.size)
            for obj in objects]


def untrusted_line(*, obj: LoadedObject, source_uri: str, target_uri: str, source: Fingerprint, copy: Fingerprint,
                   copy_generation: int | None, verdict: ArchiveVerdict) -> str:
    """The one line a run says about an original it keeps because its archive copy is not trusted."""
    if verdict is ArchiveVerdict.existing_differs:
        return (f"{source_uri} (generation {obj.generation}, {source.describe()}) was kept: its archive copy "
                f"{target_uri} (generation {copy_generation}) already exists with other content ({copy.describe()}) "
                "and is never overwritten; compare the two, then move or delete the archive copy (or set another "
                "archive_prefix) and run retention again.")
    return (f"{source_uri} (generation {obj.generation}, {source.describe()}) was kept: the rewrite to "
            f"{target_uri} produced generation {copy_generation} with other content ({copy.describe()}); "
            "delete that copy and run retention again.")
