"""The gitcoin import with the seed's Python API: the same definitions as
``orchestrator/defs/gitcoin_passport_scores/defs.yaml`` (tests/unit/test_component.py proves it).

To load a Python declaration, put the module in ``orchestrator/defs/`` and keep the
``defs = ...to_definitions()`` line: Dagster's defs-folder loader collects ``Definitions``,
not the factory's response.
"""

from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, interval_gcs_import_asset

gitcoin_passport_scores = interval_gcs_import_asset(
    IntervalGCSAsset(
        key_prefix="gitcoin",
        name="passport_scores",
        project_id="opensource-observer",
        bucket_name="oso-dataset-transfer-bucket",
        path_base="passport",
        file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores\.parquet",
        destination_table="passport_scores",
        raw_dataset_name="oso_raw_sources",
        clean_dataset_name="gitcoin",
        interval=Interval.Daily,
        mode=SourceMode.Overwrite,
        retention_days=10,
        format="PARQUET",
        asset_kwargs={"group_name": "gitcoin"},
    ),
)

defs = gitcoin_passport_scores.to_definitions()
