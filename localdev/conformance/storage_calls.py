"""Cloud Storage JSON API calls as the storage rules see them: single requests and batch sub-requests.

A batch (``POST /batch/storage/v1``, multipart/mixed) carries up to 100 calls; each gets its own
answer in the batch response, in order (https://cloud.google.com/storage/docs/batch). The proxy
checks every sub-request with the same rules as a single call, answers the refused ones itself and
forwards the rest as a smaller batch.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from localdev.conformance.exchange import Exchange, Reply

_OBJECT = re.compile(r"^/(?:download/)?storage/v1/b/([^/]+)/o/(.+?)(?:/(?:rewriteTo|copyTo)/b/([^/]+)/o/(.+))?$")
_UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)(?:/.*)?$")


@dataclass(frozen=True)
class StorageCall:
    """One JSON API call: its bucket, the object it addresses (or uploads), a rewrite's destination."""

    method: str
    path: str
    query: dict[str, list[str]]
    bucket: str | None
    name: str | None
    destination: tuple[str, str] | None = None

    def param(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None

    @property
    def is_upload(self) -> bool:
        return self.path.startswith("/upload/")

    @classmethod
    def parse(cls, method: str, target: str) -> StorageCall:
        split = urllib.parse.urlsplit(target)
        path, query = split.path, urllib.parse.parse_qs(split.query, keep_blank_values=True)
        unquote = urllib.parse.unquote
        if found := _OBJECT.match(path):
            bucket, name, dest_bucket, dest_name = found.groups()
            destination = (unquote(dest_bucket), unquote(dest_name)) if dest_bucket else None
            return cls(method, path, query, unquote(bucket), unquote(name), destination)
        if found := _UPLOAD.match(path):
            return cls(method, path, query, unquote(found.group(1)), (query.get("name") or [None])[0])
        if found := _BUCKET.match(path):
            return cls(method, path, query, unquote(found.group(1)), None)
        return cls(method, path, query, None, None)

    @classmethod
    def of(cls, exchange: Exchange) -> StorageCall:
        return cls.parse(exchange.method, exchange.target)


def is_batch(exchange: Exchange) -> bool:
    return exchange.path.rstrip("/") == "/batch/storage/v1"


@dataclass
class BatchPart:
    raw: str  # the whole part, headers included, as sent
    call: StorageCall


def split_batch(exchange: Exchange) -> tuple[str, list[BatchPart]]:
    """(boundary, parts) of a batch request."""
    boundary = exchange.headers["content-type"].split("boundary=", 1)[1].strip('"')
    text = exchange.body.decode("utf-8", errors="surrogateescape")
    parts = []
    for raw in text.split(f"--{boundary}"):
        if not raw.strip() or raw.strip() == "--":
            continue
        line = next(line for line in raw.splitlines() if re.match(r"^[A-Z]+ \S+ HTTP/1\.1$", line))
        method, uri, _ = line.split(" ", 2)
        split = urllib.parse.urlsplit(uri)  # the client writes the whole URL
        target = split.path + (f"?{split.query}" if split.query else "")
        parts.append(BatchPart(raw, StorageCall.parse(method, target)))
    return boundary, parts


def join_batch(boundary: str, parts: list[BatchPart]) -> bytes:
    return ("".join(f"--{boundary}{p.raw}" for p in parts) + f"--{boundary}--").encode("utf-8", errors="surrogateescape")


def split_batch_reply(reply: Reply) -> list[bytes]:
    """The answer parts of a batch response, in order (each ``Content-Type: application/http`` part)."""
    content_type = next((v for k, v in reply.headers.items() if k.lower() == "content-type"), "")
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    return [p for p in reply.body.split(b"--" + boundary) if p.strip() and p.strip() != b"--"]


def answer_part(reply: Reply, index: int) -> bytes:
    """A batch answer part carrying ``reply`` (a refused sub-request)."""
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed",
              429: "Too Many Requests", 503: "Service Unavailable"}.get(reply.status, "Error")
    return (f"\r\nContent-Type: application/http\r\nContent-ID: <response-{index}>\r\n\r\n"
            f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(reply.body)}\r\n\r\n").encode() + reply.body + b"\r\n"


def join_batch_reply(parts: list[bytes], *, boundary: str = "batch_conformance") -> Reply:
    body = b"".join(b"--" + boundary.encode() + p for p in parts) + b"--" + boundary.encode() + b"--"
    return Reply(status=200, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}, body=body)
