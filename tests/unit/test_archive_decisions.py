"""Archive retention's pure decisions: which copy is trusted, what a dry run moves, what the ledger records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from worker.archive_decisions import (
    ArchiveResult,
    ArchiveVerdict,
    Fingerprint,
    judge_copy,
    plan_moves,
    untrusted_line,
)
from worker.core.records import LoadedObject
from worker.core.retention_action import ArchiveTarget
from worker.ledger import entries
from worker.ledger.archived import archived_chunks

OBJ = LoadedObject(interval_start=datetime(2024, 1, 5, tzinfo=UTC), name="drops/2024-01-05/a.parquet",
                   generation=17, size=10)


@pytest.mark.parametrize(("copy", "now", "verdict"), [
    (Fingerprint(10, "AAAAAA=="), True, ArchiveVerdict.archived),
    (Fingerprint(10, "AAAAAA=="), False, ArchiveVerdict.verified_existing),
    (Fingerprint(10, "BBBBBB=="), False, ArchiveVerdict.existing_differs),
    (Fingerprint(11, "AAAAAA=="), False, ArchiveVerdict.existing_differs),
    (Fingerprint(10, None), False, ArchiveVerdict.existing_differs),  # an unknown checksum is never trusted
    (Fingerprint(10, "BBBBBB=="), True, ArchiveVerdict.copy_differs),
])
def test_a_copy_is_trusted_only_with_the_sources_size_and_crc32c(copy, now, verdict):
    assert judge_copy(source=Fingerprint(10, "AAAAAA=="), copy=copy, rewritten_now=now) is verdict
    assert verdict.trusted == (verdict in (ArchiveVerdict.archived, ArchiveVerdict.verified_existing))


def test_a_source_without_a_checksum_trusts_no_copy():
    assert not judge_copy(source=Fingerprint(10, None), copy=Fingerprint(10, None), rewritten_now=True).trusted


def test_moves_name_source_and_destination_under_the_prefix():
    target = ArchiveTarget(bucket="arch", prefix="cold/")
    assert plan_moves([OBJ], bucket="drop", target=target)[0].__dict__ == {
        "source_uri": "gs://drop/drops/2024-01-05/a.parquet",
        "target_uri": "gs://arch/cold/drops/2024-01-05/a.parquet", "size": 10}


def test_the_untrusted_line_names_both_uris_and_the_fix_on_one_line():
    line = untrusted_line(obj=OBJ, source_uri="gs://drop/x", target_uri="gs://arch/x", source=Fingerprint(10, "A"),
                          copy=Fingerprint(12, "B"), copy_generation=99, verdict=ArchiveVerdict.existing_differs)
    assert "\n" not in line
    for part in ("gs://drop/x", "gs://arch/x", "generation 17", "generation 99", "never overwritten", "run retention"):
        assert part in line


def test_only_trusted_results_are_recorded_with_exact_generations(monkeypatch):
    big = 2**62 + 1  # beyond a double's integers: must travel as a string
    results = [ArchiveResult(obj=OBJ, verdict=ArchiveVerdict.archived, target_uri="gs://a/x", archive_generation=big),
               ArchiveResult(obj=OBJ, verdict=ArchiveVerdict.existing_differs, target_uri="gs://a/y",
                             archive_generation=5)]
    [chunk] = archived_chunks(results)
    assert json.loads(chunk) == [[OBJ.name, "17", "gs://a/x", str(big)]]
    assert archived_chunks(results[1:]) == []
    monkeypatch.setattr(entries, "LEDGER_CHUNK", 2)
    many = [ArchiveResult(obj=OBJ, verdict=ArchiveVerdict.verified_existing, target_uri=f"gs://a/{i}",
                          archive_generation=i) for i in range(5)]
    assert [len(json.loads(c)) for c in archived_chunks(many)] == [2, 2, 1]
