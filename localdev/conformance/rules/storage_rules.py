"""Cloud Storage behaviours the emulators lack: generation preconditions, Requester Pays, batch size.

Each rule checks one call (``check``); the proxy applies it to single requests and to every
sub-request of a batch alike.
"""

from __future__ import annotations

import threading
import urllib.parse

from localdev.conformance.exchange import Exchange, Reply, Service, storage_error
from localdev.conformance.rules.base import Rule
from localdev.conformance.storage_calls import StorageCall, is_batch, split_batch
from localdev.conformance.world import World


class StorageCallRule(Rule):
    """A rule on one JSON API call; batches are split by the proxy and each call checked."""

    service = Service.STORAGE

    def check(self, call: StorageCall, world: World) -> Reply | None:
        raise NotImplementedError

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        if is_batch(exchange):
            return None  # the proxy checks each sub-request
        return self.check(StorageCall.of(exchange), world)


def _generation(world: World, bucket: str, name: str) -> int | None:
    quoted = f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/{urllib.parse.quote(name, safe='')}"
    status, body = world.upstream.storage("GET", quoted)
    return int(body["generation"]) if status == 200 and "generation" in body else None


_FAILED = "At least one of the pre-conditions you specified did not hold."


class GenerationPreconditions(StorageCallRule):
    """``ifGenerationMatch`` (deletes, reads, uploads, a rewrite's destination) and ``ifSourceGenerationMatch``
    (a rewrite's or copy's source) answer 412 ``conditionNotMet`` when the live generation differs
    (0: the object must not exist). gcp-storage-emulator ignores them all."""

    name = "storage_generation_preconditions"
    doc = "https://cloud.google.com/storage/docs/request-preconditions"

    def check(self, call: StorageCall, world: World) -> Reply | None:
        if call.bucket is None or call.name is None:
            return None
        wanted = call.param("ifGenerationMatch")
        source_wanted = call.param("ifSourceGenerationMatch")
        if call.destination is not None:
            if source_wanted is not None and _generation(world, call.bucket, call.name) != int(source_wanted):
                return storage_error(412, "conditionNotMet", _FAILED)
            if wanted is not None and (_generation(world, *call.destination) or 0) != int(wanted):
                return storage_error(412, "conditionNotMet", _FAILED)
            return None
        if wanted is None:
            return None
        live = _generation(world, call.bucket, call.name)
        if call.is_upload:
            return storage_error(412, "conditionNotMet", _FAILED) if (live or 0) != int(wanted) else None
        if live is not None and live != int(wanted):
            return storage_error(412, "conditionNotMet", _FAILED)
        return None


class RequesterPays(StorageCallRule):
    """A Requester Pays bucket refuses calls without ``userProject`` (400 ``required``). The rule learns
    such buckets from bucket inserts/patches that set ``billing.requesterPays``, or from :meth:`mark`."""

    name = "storage_requester_pays"
    doc = "https://cloud.google.com/storage/docs/requester-pays"
    assumed = "the exact message of the 400 (Google's page names the error, UserProjectMissing)"

    def __init__(self) -> None:
        self._buckets: set[str] = set()
        self._lock = threading.Lock()

    def mark(self, bucket: str, *, requester_pays: bool = True) -> None:
        with self._lock:
            (self._buckets.add if requester_pays else self._buckets.discard)(bucket)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def check(self, call: StorageCall, world: World) -> Reply | None:
        if call.bucket in self._buckets and not call.param("userProject"):
            return storage_error(400, "required", "Bucket is a requester pays bucket but no user project provided.")
        return None

    def after(self, exchange: Exchange, reply: Reply, world: World) -> Reply:
        if reply.status == 200 and exchange.method in ("POST", "PATCH", "PUT") and "billing" in exchange.json:
            call = StorageCall.of(exchange)
            bucket = call.bucket or exchange.json.get("name")
            if bucket and exchange.path.rstrip("/") in ("/storage/v1/b", f"/storage/v1/b/{bucket}"):
                self.mark(bucket, requester_pays=bool(exchange.json["billing"].get("requesterPays")))
        return reply


class BatchSize(Rule):
    """At most 100 calls in one batch request."""

    name = "storage_batch_size"
    doc = "https://cloud.google.com/storage/docs/batch"
    service = Service.STORAGE
    assumed = "the error payload (Google documents the limit of 100 calls, not the answer to 101)"
    LIMIT = 100

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        if not is_batch(exchange):
            return None
        _, parts = split_batch(exchange)
        if len(parts) > self.LIMIT:
            return storage_error(400, "invalid", f"A batch request may contain at most {self.LIMIT} calls; "
                                                 f"this one has {len(parts)}.")
        return None
