"""A group commit: the threads of one round each bring an item, and one call writes them all.

The loader threads of a round (:mod:`worker.interval_rounds`) each reach the point where their pending load
must be durable before their copy; instead of one statement each, every thread :meth:`Member.join`\\ s with
its item and waits, and once every member has joined or left, the last one to arrive runs the commit
function once over all items, and each joined thread goes on (or raises its item's error). A member that
will never join (its load failed, or it reattached to a finished copy and has nothing to write) must
:meth:`Member.leave` so the others are not kept waiting: :meth:`GroupCommit.member` hands out context
managers that leave on exit, so a thread that raises leaves too and no member can wait forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

#: The commit function: the items joined (in join order) → one error (or None) per item, in that order.
#: It should return errors rather than raise; if it raises, every joined item gets that error.
Commit = Callable[[Sequence[T]], Sequence[BaseException | None]]


@dataclass
class _Joined(Generic[T]):
    item: T
    done: bool = False
    error: BaseException | None = None


@dataclass
class GroupCommit(Generic[T]):
    """One commit of the items of ``members`` threads (see the module docstring).

    ``members`` is how many :meth:`member` handles will be taken; the commit runs when each has joined or
    left (never when no item was joined).
    """

    members: int
    commit: Commit[T]
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _settled: int = 0
    _joined: list[_Joined[T]] = field(default_factory=list)
    #: Items committed by this group (for the caller's report); empty until the commit ran.
    committed: list[T] = field(default_factory=list)

    def member(self) -> Member[T]:
        """One member's handle; use it as a context manager so it leaves when its thread is done."""
        return Member(group=self)

    def _join(self, item: T) -> None:
        with self._lock:
            joined = _Joined(item=item)
            self._joined.append(joined)
            batch = self._settle()
            while batch is None and not joined.done:
                self._lock.wait()
        if batch is not None:
            self._run(batch)
        if joined.error is not None:
            raise joined.error

    def _leave(self) -> None:
        with self._lock:
            batch = self._settle()
        if batch is not None:
            self._run(batch)

    def _settle(self) -> list[_Joined[T]] | None:
        """Count one member as settled (under the lock); the batch to commit when it was the last."""
        self._settled += 1
        if self._settled > self.members:
            raise RuntimeError(f"GroupCommit of {self.members} members settled {self._settled} times")
        return list(self._joined) if self._settled == self.members and self._joined else None

    def _run(self, batch: list[_Joined[T]]) -> None:
        """Commit ``batch`` (outside the lock), hand each joined member its error, wake them all."""
        items = [j.item for j in batch]
        try:
            errors: Sequence[BaseException | None] = self.commit(items)
            if len(errors) != len(items):
                raise RuntimeError(f"the commit returned {len(errors)} results for {len(items)} items")
        except BaseException as exc:  # every waiting member must wake up, whatever happened
            errors = [exc] * len(items)
        with self._lock:
            for joined, error in zip(batch, errors, strict=True):
                joined.error, joined.done = error, True
            self.committed.extend(item for item, error in zip(items, errors, strict=True) if error is None)
            self._lock.notify_all()


@dataclass
class Member(Generic[T]):
    """One thread's place in a :class:`GroupCommit`: :meth:`join` once with its item, or leave."""

    group: GroupCommit[T]
    _settled: bool = False

    def join(self, item: T) -> None:
        """Add ``item`` and wait until the group's commit ran; raises the item's error (if any).

        Raises:
            RuntimeError: this member already joined or left.
        """
        if self._settled:
            raise RuntimeError("a GroupCommit member joins once")
        self._settled = True
        self.group._join(item)

    def leave(self) -> None:
        """Settle without an item (nothing to commit); a no-op after :meth:`join` or a first leave."""
        if not self._settled:
            self._settled = True
            self.group._leave()

    def __enter__(self) -> Member[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.leave()
