"""Every conformance rule, one documented behaviour each (the module names say which service)."""

from __future__ import annotations

from localdev.conformance.rules.base import Rule


def all_rules() -> list[Rule]:
    """A fresh instance of every rule, in the order they see a request (refusals first)."""
    from localdev.conformance.rules.bigquery_avro_logical_types import AvroLogicalTypes
    from localdev.conformance.rules.bigquery_copy_layout import CopyLayout
    from localdev.conformance.rules.bigquery_dml_concurrency import DmlConcurrency
    from localdev.conformance.rules.bigquery_job_ids import DuplicateJobId, ForeignJobs
    from localdev.conformance.rules.bigquery_load_bad_records import LoadBadRecords
    from localdev.conformance.rules.bigquery_load_uris import LoadUris
    from localdev.conformance.rules.bigquery_partition_filter import RequirePartitionFilter
    from localdev.conformance.rules.bigquery_partitions_per_job import PartitionsPerJob
    from localdev.conformance.rules.bigquery_request_size import RequestSize
    from localdev.conformance.rules.bigquery_schema_after_alter import SchemaAfterAlter
    from localdev.conformance.rules.bigquery_schema_patch import SchemaPatchAddsColumns
    from localdev.conformance.rules.bigquery_table_etag import TableEtag
    from localdev.conformance.rules.bigquery_table_expiry import TableExpiry
    from localdev.conformance.rules.bigquery_table_update_rate import TableUpdateRate
    from localdev.conformance.rules.bigquery_truncating_copy import TruncatingCopyReplacesSchema
    from localdev.conformance.rules.storage_rewrite_tokens import RewriteTokens
    from localdev.conformance.rules.storage_rules import BatchSize, GenerationPreconditions, RequesterPays

    return [
        TableExpiry(),  # first: deletes what expired by the proxy's clock before any rule looks at a table
        RequestSize(), ForeignJobs(), DuplicateJobId(), TableEtag(), TableUpdateRate(), LoadUris(),
        AvroLogicalTypes(), LoadBadRecords(),
        RequirePartitionFilter(), CopyLayout(),  # before the truncating copy drops a destination
        PartitionsPerJob(), TruncatingCopyReplacesSchema(), SchemaAfterAlter(), SchemaPatchAddsColumns(), DmlConcurrency(),
        BatchSize(), RequesterPays(), GenerationPreconditions(),
        RewriteTokens(),  # after the preconditions: they hold on every call of a rewrite
    ]


__all__ = ["Rule", "all_rules"]
