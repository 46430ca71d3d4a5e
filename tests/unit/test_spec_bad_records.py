"""``max_bad_records`` where BigQuery ignores it: "This is only supported for CSV and NEWLINE_DELIMITED_JSON file
formats" (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationLoad.FIELDS.max_bad_records),
so a non-zero value for Parquet, Avro or ORC is refused when the spec is built (definitions load), naming the field."""

from __future__ import annotations

import pytest

from tests.unit.test_spec import BASE
from worker.core.spec import ImportSpec, SpecError
from worker.loading import load_job_config


@pytest.mark.parametrize("fmt", ["PARQUET", "AVRO", "ORC"])
def test_max_bad_records_is_refused_where_bigquery_ignores_it(fmt):
    with pytest.raises(SpecError) as refused:
        ImportSpec(**{**BASE, "format": fmt, "max_bad_records": 5})
    message = str(refused.value)
    assert "field 'max_bad_records'" in message and fmt in message and "on_bad_file" in message and "\n" not in message
    assert ImportSpec(**{**BASE, "format": fmt, "max_bad_records": 0}).max_bad_records == 0


@pytest.mark.parametrize("fmt", ["CSV", "NEWLINE_DELIMITED_JSON"])
def test_max_bad_records_is_kept_for_csv_and_json(fmt):
    spec = ImportSpec(**{**BASE, "format": fmt, "max_bad_records": 5})
    assert load_job_config(spec, first_batch=True).to_api_repr()["load"]["maxBadRecords"] == 5
