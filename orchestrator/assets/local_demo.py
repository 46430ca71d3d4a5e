"""The local demo's asset: the gitcoin layout against the emulators, defined only when ``GCS_IMPORT_DEMO=1``.

Why a separate asset rather than overriding the gitcoin config from the environment:
the emulator needs an explicit schema for Parquet into a new table and only serves
the project ``test-project``, and an env switch that rewrites a production spec is
a foot-gun. This asset is the same factory call with those three differences, and
it exists only when the demo (``python -m localdev.demo``) sets ``GCS_IMPORT_DEMO=1``.
"""

import os

from orchestrator.factories import Interval, IntervalGCSAsset, SourceMode, interval_gcs_import_asset

DEMO_ENV = "GCS_IMPORT_DEMO"
DEMO_PROJECT = "test-project"
DEMO_BUCKET = "gcs-import-demo"
DEMO_PATH_BASE = "passport"
DEMO_START_DATE = "2024-05-01"

if os.environ.get(DEMO_ENV) == "1":
    from localdev.samples import SCORES_SCHEMA

    demo_passport_scores = interval_gcs_import_asset(
        IntervalGCSAsset(
            key_prefix="demo",
            name="demo_passport_scores",
            project_id=DEMO_PROJECT,
            bucket_name=DEMO_BUCKET,
            path_base=DEMO_PATH_BASE,
            file_match=r"(?P<interval_timestamp>\d\d\d\d-\d\d-\d\d)/scores.parquet",
            destination_table="passport_scores",
            raw_dataset_name="demo_raw_sources",
            clean_dataset_name="demo_gitcoin",
            interval=Interval.Daily,
            mode=SourceMode.Overwrite,
            retention_days=10,
            format="PARQUET",
            schema=SCORES_SCHEMA,
            start_date=DEMO_START_DATE,
            asset_kwargs={"group_name": "demo", "owners": ["team:data"], "tags": {"source": "local-demo"}},
        ),
    )
