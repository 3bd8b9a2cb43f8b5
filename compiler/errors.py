"""Errors the compiler raises; each message names the node, op or field at fault."""

from __future__ import annotations


class CompileError(ValueError):
    """The model cannot be compiled (malformed ONNX, unsupported op, bad shapes, bad calibration)."""


class ProgramFormatError(ValueError):
    """A Program file is not readable by this version of the compiler."""
