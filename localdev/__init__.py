"""Local stand-ins for GCS and BigQuery, sample data, and the demo (never imported by the worker)."""
