"""Sample file drops for the demo and the tests: small, deterministic files written through the GCS client."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Sequence
from datetime import datetime

from google.cloud import storage

#: The demo's columns, as an explicit schema (bqemulator needs one for Parquet into a new table).
SCORES_SCHEMA = (
    {"name": "address", "type": "STRING", "mode": "NULLABLE"},
    {"name": "score", "type": "FLOAT64", "mode": "NULLABLE"},
    {"name": "day", "type": "STRING", "mode": "NULLABLE"},
)


def score_rows(*, interval_start: datetime, count: int, seed: int = 0) -> list[dict]:
    """``count`` rows of (address, score, day) that differ per interval and seed."""
    day = interval_start.strftime("%Y-%m-%d")
    return [
        {"address": f"0x{(seed * 7919 + i):040x}", "score": round((i * 37 + seed) % 1000 / 10.0, 1), "day": day}
        for i in range(count)
    ]


def encode_rows(rows: Sequence[dict], *, fmt: str, gzip_csv: bool = False) -> bytes:
    """Rows as a PARQUET, CSV (header row; optionally gzip) or NEWLINE_DELIMITED_JSON file."""
    if fmt == "PARQUET":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
        buf = io.BytesIO()
        pq.write_table(pa.table(columns), buf)
        return buf.getvalue()
    if fmt == "CSV":
        keys = list(rows[0]) if rows else []
        lines = [",".join(keys)] + [",".join(str(row[k]) for k in keys) for row in rows]
        data = ("\n".join(lines) + "\n").encode()
        return gzip.compress(data, mtime=0) if gzip_csv else data
    if fmt == "NEWLINE_DELIMITED_JSON":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    raise ValueError(f"sample files support PARQUET, CSV and NEWLINE_DELIMITED_JSON, not {fmt!r}")


def upload(bucket: storage.Bucket, name: str, data: bytes) -> storage.Blob:
    """Upload ``data`` as ``name`` and return the blob (with its new generation)."""
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    blob.reload()
    return blob


def drop_daily_scores(
    bucket: storage.Bucket, *, path_base: str, days: Sequence[datetime], rows_per_file: int = 5, seed: int = 0
) -> list[storage.Blob]:
    """The seed's layout: ``{path_base}/{YYYY-MM-DD}/scores.parquet``, one file per day."""
    return [
        upload(
            bucket,
            f"{path_base}/{day:%Y-%m-%d}/scores.parquet",
            encode_rows(score_rows(interval_start=day, count=rows_per_file, seed=seed), fmt="PARQUET"),
        )
        for day in days
    ]
