"""Seed a fake-gcs-server filesystem root with many objects fast (no API upload per object).

fake-gcs-server's filesystem backend keeps each object as a plain file at ``ROOT/BUCKET/NAME``
with its metadata JSON in the ``user.metadata`` extended attribute (what one API upload writes);
it reads both on every request, so files written here are listed at once. Uploading tens of
thousands of objects through the API would dominate the benchmark's time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import google_crc32c

_FIRST_GENERATION = 1_700_000_000_000_000


def seed_objects(root: Path, bucket: str, objects: Iterable[tuple[str, bytes]], *, generation: int | None = None) -> int:
    """Write ``(name, body)`` pairs into ``bucket`` under ``root``; return how many were written.

    The bucket must exist already (create it through the API so its metadata file is written).
    Every object gets a distinct generation (or ``generation`` + its position).
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    base = generation or _FIRST_GENERATION + int(datetime.now(UTC).timestamp() * 1000) * 1000
    count = 0
    for count, (name, body) in enumerate(objects, 1):
        path = root / bucket / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        crc = base64.b64encode(google_crc32c.Checksum(body).digest()).decode()
        meta = {"StorageClass": "STANDARD", "ContentType": "application/octet-stream", "Crc32c": crc,
                "Md5Hash": md5, "Etag": md5, "Created": now, "Updated": now, "Generation": base + count}
        os.setxattr(path, "user.metadata", json.dumps(meta).encode())
    return count
