"""The ``golden`` backend: compiled Programs run by the compiler's bit-exact numpy executor."""

from __future__ import annotations

from morphware.runtime.backends.program_common import ProgramBackend


class GoldenBackend(ProgramBackend):
    name = "golden"
    priority = 40
    description = "compiled Program on the numpy golden model (bit-exact spec of the array)"
    executor = "golden"
    profile_batch = 64


BACKEND = GoldenBackend
