"""The project's defs folder, loaded by ``dg.load_from_defs_folder`` (see orchestrator/definitions.py).

One folder per import with a ``defs.yaml`` (``dg scaffold defs
orchestrator.components.IntervalGCSImportComponent <name>``), or a Python module whose
``defs = interval_gcs_import_asset(...).to_definitions()``; ``resources.py`` binds the shared
``launcher``.
"""
