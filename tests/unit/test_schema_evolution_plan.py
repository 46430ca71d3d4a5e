"""Schema evolution of the Incremental clean table: the plan (pure) and the schema patch it sends.

Every column of a change goes in one ``tables.patch`` with the whole schema (new columns NULLABLE, relaxed
columns NULLABLE: https://cloud.google.com/bigquery/docs/managing-table-schemas), not one ``ALTER TABLE`` per
column (5 table updates per 10 s). ``add_and_relax``'s relaxation is checked here as the schema sent;
adding columns runs against the emulator in tests/emulators/test_schema_evolution.py.
"""

import pytest
from google.cloud import bigquery

from worker.core.spec import SchemaEvolution
from worker.publishing import evolved_schema
from worker.schema_changes import Column, ColumnChangeKind, EvolutionPlan, diff_columns, plan_clean_table_evolution

CLEAN = [Column("id", "INT64", "REQUIRED"), Column("name", "STRING"), Column("_interval_start", "TIMESTAMP")]


def plan(interval, mode=SchemaEvolution.add_columns, clean=CLEAN):
    return plan_clean_table_evolution(clean=clean, interval=interval, mode=mode, interval_label="2024-01-06",
                                      clean_table="p.clean.t", reserved=("_interval_start",))


def test_same_columns_change_nothing():
    assert plan([Column("id", "INT64", "REQUIRED"), Column("name", "STRING")]) == EvolutionPlan()


def test_a_nullable_column_the_interval_leaves_out_needs_nothing():
    assert plan([Column("id", "INT64", "REQUIRED")]) == EvolutionPlan()


@pytest.mark.parametrize("mode", [SchemaEvolution.add_columns, SchemaEvolution.add_and_relax])
def test_new_columns_are_added_as_nullable(mode):
    result = plan([Column("id", "INT64", "REQUIRED"), Column("name", "STRING"), Column("score", "FLOAT64", "REQUIRED"),
                   Column("tags", "STRING", "REPEATED")], mode=mode)
    assert [c.name for c in result.add] == ["score", "tags"] and result.refusal is None
    assert [(c.column, c.change) for c in result.changes] == [("score", ColumnChangeKind.ADDED), ("tags", ColumnChangeKind.ADDED)]


def test_fail_mode_refuses_new_columns_naming_them_and_the_fix():
    result = plan([Column("id", "INT64", "REQUIRED"), Column("extra", "STRING")], mode=SchemaEvolution.fail)
    assert "['extra']" in result.refusal and "left unchanged" in result.refusal and "add_columns" in result.refusal


@pytest.mark.parametrize("mode", list(SchemaEvolution))
def test_a_type_change_is_refused_in_every_mode_naming_column_types_and_interval(mode):
    result = plan([Column("id", "STRING", "NULLABLE")], mode=mode)
    assert "'id' is INT64 REQUIRED in p.clean.t but STRING NULLABLE in interval 2024-01-06" in result.refusal
    assert "Nothing was published" in result.refusal


def test_legacy_and_standard_type_names_are_the_same_type():
    from google.cloud import bigquery

    assert Column.of(bigquery.SchemaField("n", "INTEGER")).type == Column.of(bigquery.SchemaField("n", "INT64")).type


def test_a_required_column_left_empty_is_refused_unless_relaxing():
    refused = plan([Column("name", "STRING")])
    assert "REQUIRED columns ['id']" in refused.refusal and "add_and_relax" in refused.refusal
    relaxed = plan([Column("name", "STRING")], mode=SchemaEvolution.add_and_relax)
    assert relaxed.relax == ("id",) and relaxed.refusal is None
    assert [(c.column, c.change, c.before, c.after) for c in relaxed.changes] == [("id", ColumnChangeKind.RELAXED, "REQUIRED", "NULLABLE")]


def test_a_new_struct_column_is_refused():
    assert "STRUCT" in plan([Column("id", "INT64", "REQUIRED"), Column("meta", "STRUCT")]).refusal


def test_one_schema_patch_adds_and_relaxes_every_column():
    result = plan([Column("id", "INT64", "REQUIRED"), Column("new col", "NUMERIC"), Column("tags", "STRING", "REPEATED")],
                  mode=SchemaEvolution.add_and_relax, clean=[*CLEAN, Column("must", "DATE", "REQUIRED")])
    clean = [bigquery.SchemaField("id", "INTEGER", mode="REQUIRED", description="kept"),
             bigquery.SchemaField("name", "STRING"), bigquery.SchemaField("_interval_start", "TIMESTAMP"),
             bigquery.SchemaField("must", "DATE", mode="REQUIRED")]
    raw = [bigquery.SchemaField("id", "INTEGER", mode="REQUIRED"), bigquery.SchemaField("new col", "NUMERIC", mode="REQUIRED"),
           bigquery.SchemaField("tags", "STRING", mode="REPEATED")]
    schema = evolved_schema(clean, raw, result)
    assert [(f.name, f.field_type, f.mode) for f in schema] == [
        ("id", "INTEGER", "REQUIRED"), ("name", "STRING", "NULLABLE"), ("_interval_start", "TIMESTAMP", "NULLABLE"),
        ("must", "DATE", "NULLABLE"), ("new col", "NUMERIC", "NULLABLE"), ("tags", "STRING", "REPEATED")]
    assert schema[0].description == "kept", "existing columns keep their properties"
    assert evolved_schema(clean, raw, EvolutionPlan()) is None, "nothing to change: no update sent"


def test_diff_columns_lists_added_removed_and_retyped():
    before = [Column("a", "STRING"), Column("b", "INT64"), Column("c", "DATE")]
    after = [Column("a", "STRING"), Column("b", "STRING"), Column("d", "BOOL")]
    assert [(c.column, c.change) for c in diff_columns(before, after)] == [
        ("d", ColumnChangeKind.ADDED), ("c", ColumnChangeKind.REMOVED), ("b", ColumnChangeKind.TYPE_CHANGED)]
