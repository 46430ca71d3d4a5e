"""objects.rewrite through the official client and the conformance proxy: several calls with a rewriteToken
(``storage_rewrite_tokens``), and the preconditions of both ends (``storage_generation_preconditions``)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc


def test_a_large_rewrite_takes_calls_with_a_token_and_copies_once_done(conformance, bucket):
    source = bucket.blob("src.bin")
    source.upload_from_string(b"x" * 5000)
    copy = bucket.blob("arch/src.bin")

    token, done, total = copy.rewrite(source, if_generation_match=0, if_source_generation_match=source.generation)
    assert token is not None and (done, total) == (1024, 5000)
    assert bucket.get_blob("arch/src.bin") is None, "nothing is copied before the rewrite is done"
    calls = 1
    while token is not None:
        token, done, total = copy.rewrite(source, token=token, if_generation_match=0,
                                          if_source_generation_match=source.generation)
        calls += 1
    assert calls == 5 and done == 5000
    assert (copy.size, copy.crc32c) == (5000, source.crc32c) and copy.generation is not None
    assert conformance.rule("storage_rewrite_tokens").partial_answers == 4


def test_a_rewrite_never_overwrites_an_existing_destination(conformance, bucket):
    source, existing = bucket.blob("a.csv"), bucket.blob("b.csv")
    source.upload_from_string(b"1")
    existing.upload_from_string(b"2")
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("b.csv").rewrite(source, if_generation_match=0, if_source_generation_match=source.generation)
    assert bucket.blob("b.csv").download_as_bytes() == b"2"
    with conformance.disabled("storage_generation_preconditions"):  # the emulator alone overwrites it
        bucket.blob("b.csv").rewrite(source, if_generation_match=0)
    assert bucket.blob("b.csv").download_as_bytes() == b"1"


def test_without_the_rule_the_emulator_copies_in_one_call(conformance, bucket):
    source = bucket.blob("big.bin")
    source.upload_from_string(b"y" * 5000)
    with conformance.disabled("storage_rewrite_tokens"):
        token, done, total = bucket.blob("c.bin").rewrite(source)
    assert (token, done, total) == (None, 5000, 5000)
