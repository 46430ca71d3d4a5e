"""The import worker: a Dagster Pipes program that loads GCS file drops into BigQuery.

It imports ``dagster_pipes`` only (never ``dagster``) so its image stays small.
Run it as ``python -m worker`` (under Pipes, or standalone with ``--help``).
"""
