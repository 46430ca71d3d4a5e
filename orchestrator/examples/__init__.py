"""Examples written with the Python API (not loaded by the code location; the defs folder is)."""
