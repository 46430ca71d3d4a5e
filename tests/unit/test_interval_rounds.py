"""Issue 19: the pure parts of running the intervals of a run side by side — the group commit of a round's
pending loads (a member that fails or has nothing to write leaves; nobody waits forever), the batch-or-each
fallback, and the ``max_concurrent_intervals`` field (checked, left out of the fingerprint)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.unit.test_spec import BASE
from worker.core.errors import ServiceUnreachable, WorkerError
from worker.core.spec import ImportSpec, SpecError
from worker.group_commit import GroupCommit
from worker.interval_rounds import _batched

#: Long enough for a lost wake-up to show as a hang; every test finishes far sooner when all is well.
JOIN_TIMEOUT = 10


def run_members(group: GroupCommit, plans: list) -> list:
    """One thread per plan ("join:<item>", "leave", "raise", "join-then-raise:<item>"); each thread's outcome."""
    outcomes: list = [None] * len(plans)

    def member(index: int, plan: str) -> None:
        with group.member() as handle:
            try:
                if plan == "raise":
                    raise WorkerError(f"member {index} failed before its commit point")
                if plan.startswith("join"):
                    handle.join(plan.split(":", 1)[1])
                    if plan.startswith("join-then-raise"):
                        raise WorkerError(f"member {index} failed after its commit")
                outcomes[index] = "ok"
            except WorkerError as exc:
                outcomes[index] = exc

    threads = [threading.Thread(target=member, args=(i, p), daemon=True) for i, p in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), "a member of the group commit never woke up (deadlock)"
    return outcomes


def test_one_commit_for_every_member_before_any_goes_on():
    calls: list[list[str]] = []
    order: list[str] = []

    def commit(items):
        time.sleep(0.05)  # the others must be waiting here, not past their commit point
        calls.append(sorted(items))
        order.append("commit")
        return [None] * len(items)

    group: GroupCommit[str] = GroupCommit(members=4, commit=commit)
    assert run_members(group, [f"join:{x}" for x in "abcd"]) == ["ok"] * 4
    assert calls == [["a", "b", "c", "d"]], "exactly one commit of all four items"
    assert sorted(group.committed) == ["a", "b", "c", "d"]


def test_a_member_that_fails_or_has_nothing_to_write_leaves_and_the_others_commit():
    calls: list[list[str]] = []
    group: GroupCommit[str] = GroupCommit(members=4, commit=lambda items: (calls.append(sorted(items)), [None] * len(items))[1])
    outcomes = run_members(group, ["join:a", "raise", "leave", "join:d"])
    assert outcomes[0] == "ok" and outcomes[3] == "ok" and outcomes[2] == "ok"
    assert isinstance(outcomes[1], WorkerError)
    assert calls == [["a", "d"]]


def test_every_member_leaving_commits_nothing():
    calls: list = []
    group: GroupCommit[str] = GroupCommit(members=3, commit=lambda items: calls.append(items) or [None] * len(items))
    assert run_members(group, ["raise", "leave", "raise"])[1] == "ok"
    assert calls == []


def test_each_member_gets_its_own_error_and_a_raising_commit_wakes_everyone():
    def commit(items):
        return [WorkerError(f"{i} refused") if i == "b" else None for i in items]

    outcomes = run_members(GroupCommit(members=3, commit=commit), ["join:a", "join:b", "join:c"])
    assert outcomes[0] == "ok" and outcomes[2] == "ok"
    assert str(outcomes[1]) == "b refused"

    def broken(items):
        raise WorkerError("the batch statement failed")

    outcomes = run_members(GroupCommit(members=2, commit=broken), ["join:a", "join-then-raise:b"])
    assert [str(o) for o in outcomes] == ["the batch statement failed"] * 2


def test_a_member_joins_once():
    group: GroupCommit[str] = GroupCommit(members=1, commit=lambda items: [None] * len(items))
    member = group.member()
    member.join("a")
    member.leave()  # after a join: nothing
    with pytest.raises(RuntimeError, match="joins once"):
        member.join("b")


def test_a_failing_batch_falls_back_to_one_call_per_item():
    def batch(items):
        raise WorkerError("one statement for all failed")

    def single(item):
        if item == 2:
            raise WorkerError("item 2 failed")

    errors = _batched([1, 2, 3], batch, single)
    assert [None if e is None else str(e) for e in errors] == [None, "item 2 failed", None]
    assert _batched([1, 2], lambda items: None, single) == [None, None]


def test_an_unreachable_service_is_not_retried_item_by_item():
    singles: list = []

    def batch(items):
        raise ServiceUnreachable("BigQuery stayed unreachable")

    errors = _batched([1, 2], batch, singles.append)
    assert singles == [] and all(isinstance(e, ServiceUnreachable) for e in errors)


def test_max_concurrent_intervals_is_checked_and_left_out_of_the_fingerprint():
    spec = ImportSpec(**BASE)
    assert spec.max_concurrent_intervals == 8
    one = ImportSpec(**{**BASE, "max_concurrent_intervals": 1})
    assert one.fingerprint() == spec.fingerprint(), "job ids and digests must not depend on the concurrency"
    assert ImportSpec(**{**BASE, "max_concurrent_intervals": 16}).max_concurrent_intervals == 16
    for bad in (0, 17, True, "4", 2.5):
        with pytest.raises(SpecError, match=r"field 'max_concurrent_intervals'.*from 1 .* to 16"):
            ImportSpec(**{**BASE, "max_concurrent_intervals": bad})
