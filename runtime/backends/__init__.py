"""Execution backends: one module per backend (``ops_<name>.py``), found by ``registry``."""
