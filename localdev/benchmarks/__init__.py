"""The benchmark suite: figures a platform team asks for, measured side by side in one run.

``python -m localdev.benchmarks`` (``--quick`` for CI) starts its own emulators, runs every
measurement module below and writes ``docs/benchmarks/results.{json,md}`` and PNG plots.
One module per question: ``worker_memory``, ``orchestrator_memory``, ``planning_cost``,
``sensor_cost``, ``bigquery_writes``, ``retention_requests``, ``launch_overhead``,
``backfill_throughput``. ``results`` holds the figure type and the writers, ``seeding`` puts
many objects into a GCS stand-in fast, ``http_counting`` counts the requests a process sends.
"""
