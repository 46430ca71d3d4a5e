"""Latency mode through the official clients against the emulators: each response is held the set time,
and concurrent requests (each client on its own thread) overlap their waits."""

from __future__ import annotations

import threading
import time

from worker.bigquery_client import bigquery_client
from worker.core.gcs import storage_client

LATENCY = 0.5
CONCURRENT = 4


def test_every_response_is_held_and_concurrent_requests_overlap(conformance, services, bucket):
    bq_clients = [bigquery_client(project_id=services.project_id) for _ in range(CONCURRENT)]
    gcs = storage_client(project_id=services.project_id)
    for client in bq_clients:
        list(client.list_datasets())  # connections open, tokens fetched, before the latency
    list(gcs.list_blobs(bucket.name))
    with conformance.latency(LATENCY):
        started = time.monotonic()
        list(gcs.list_blobs(bucket.name))
        assert time.monotonic() - started >= LATENCY
        threads = [threading.Thread(target=lambda c=c: list(c.list_datasets())) for c in bq_clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
    assert conformance.latency_seconds == 0
    assert LATENCY <= wall < LATENCY * 2.5, f"{CONCURRENT} concurrent requests took {wall:.2f} s at {LATENCY} s latency"
