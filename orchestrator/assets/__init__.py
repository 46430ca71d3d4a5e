"""Asset modules: every module here is imported by ``orchestrator.definitions``.

Put one ``interval_gcs_import_asset(IntervalGCSAsset(...))`` (or any asset) at
module level in a new file; nothing else needs registering.
"""
