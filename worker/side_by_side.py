"""Independent calls to the cloud waited for side by side instead of one after another.

At the cloud's latency every request is a round trip: a run's setup (two datasets, the ledger's two tables,
the expiry repairs) and its two ledger reads are independent of each other, so they are sent together.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def side_by_side(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads and return their results in order, once all have ended.

    Raises:
        The exception of the first call (in the order given) that raised; the others ran to their end.
    """
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="side-by-side") as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
    return [future.result() for future in futures]
