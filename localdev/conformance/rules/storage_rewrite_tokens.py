"""objects.rewrite in several calls: ``done: false`` with a ``rewriteToken`` until the copy is complete.

"For large objects, this method requires the use of multiple requests ... the method responds with the done
flag set to false and also returns a rewriteToken. To complete the rewrite, you must keep calling the endpoint
using the rewriteToken returned in the prior response until the done flag is true"
(https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite); a rewrite into another storage class or
location (an archive bucket, typically) is such a case. gcp-storage-emulator copies every object in one call and
ignores ``rewriteToken``, so a client that never loops would pass against it.

The rule answers the first call for a source larger than one call's worth (``maxBytesRewrittenPerCall`` when the
request gives it, else :attr:`RewriteTokens.chunk_bytes`) itself, with progress and a token; each later call
with that token advances the progress; the call that completes it is forwarded to the emulator (which copies)
without the token. A token the rule never issued, or reused for another source or destination, is refused.
The generation preconditions (:class:`~localdev.conformance.rules.storage_rules.GenerationPreconditions`, which
sees every call first) hold on each call.
"""

from __future__ import annotations

import secrets
import threading
import urllib.parse
from dataclasses import dataclass

from localdev.conformance.exchange import Exchange, Reply, Service, json_reply, storage_error
from localdev.conformance.rules.base import Rule
from localdev.conformance.storage_calls import StorageCall
from localdev.conformance.world import World


@dataclass
class _Rewrite:
    """A rewrite in progress, as its token names it."""

    source: tuple[str, str]
    destination: tuple[str, str]
    size: int
    done_bytes: int


class RewriteTokens(Rule):
    """objects.rewrite of a source larger than one call's worth answers ``done: false`` with a ``rewriteToken``
    until the copy is complete (the emulator copies in one call)."""

    name = "storage_rewrite_tokens"
    doc = "https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite"
    service = Service.STORAGE
    assumed = ("how many bytes one call rewrites (Google does not say; chunk_bytes, default 1 KiB, so the test "
               "files take several calls), and the 400 payload for an unknown token")
    DEFAULT_CHUNK_BYTES = 1024

    def __init__(self) -> None:
        self.chunk_bytes = self.DEFAULT_CHUNK_BYTES
        self._rewrites: dict[str, _Rewrite] = {}
        self._lock = threading.Lock()
        #: Calls the rule answered with ``done: false`` (tests read it to know the token loop ran).
        self.partial_answers = 0

    def reset(self) -> None:
        with self._lock:
            self.chunk_bytes = self.DEFAULT_CHUNK_BYTES
            self._rewrites.clear()
            self.partial_answers = 0

    def before(self, exchange: Exchange, world: World) -> Reply | None:
        call = StorageCall.of(exchange)
        if exchange.method != "POST" or call.destination is None or "/rewriteTo/" not in call.path:
            return None
        assert call.bucket is not None and call.name is not None
        source = (call.bucket, call.name)
        token = call.param("rewriteToken")
        per_call = int(call.param("maxBytesRewrittenPerCall") or self.chunk_bytes)
        size = _size(world, *source) if token is None else None
        if token is None and (size is None or size <= per_call):
            return None  # one call copies it (or the emulator answers 404)
        with self._lock:
            if token is None:
                assert size is not None
                token = secrets.token_urlsafe(24)
                self._rewrites[token] = progress = _Rewrite(source, call.destination, size, 0)
            else:
                progress = self._rewrites.get(token)
                if progress is None or (progress.source, progress.destination) != (source, call.destination):
                    return storage_error(400, "invalid", "Invalid rewrite token.")
            progress.done_bytes = min(progress.size, progress.done_bytes + per_call)
            if progress.done_bytes >= progress.size:
                del self._rewrites[token]
                exchange.query.pop("rewriteToken", None)  # the emulator copies in this call
                return None
            self.partial_answers += 1
        return json_reply(200, {"kind": "storage#rewriteResponse", "totalBytesRewritten": str(progress.done_bytes),
                                "objectSize": str(progress.size), "done": False, "rewriteToken": token})


def _size(world: World, bucket: str, name: str) -> int | None:
    quoted = f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/{urllib.parse.quote(name, safe='')}"
    status, body = world.upstream.storage("GET", quoted)
    return int(body["size"]) if status == 200 and "size" in body else None
