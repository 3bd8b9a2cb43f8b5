"""Catalog of FPGA overlays: one manifest per board x array shape, and their build recipes."""
