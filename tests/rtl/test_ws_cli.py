"""``morphware verify`` end to end on a small configuration."""

from __future__ import annotations

import pytest
from morphware.runtime.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.rtl


def test_verify_cli_passes_on_2x3_icarus() -> None:
    res = CliRunner().invoke(app, ["verify", "--rows", "2", "--cols", "3", "--sim", "icarus",
                                   "--no-resources"])
    assert res.exit_code == 0, res.output
    assert "all" in res.output and "passed" in res.output
    assert "FAIL" not in res.output


def test_verify_cli_rejects_bad_width() -> None:
    res = CliRunner().invoke(app, ["verify", "--bits", "12", "--no-resources"])
    assert res.exit_code == 2
    assert "data_bits" in res.output
