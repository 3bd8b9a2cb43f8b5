"""``morphware devnet --embedded``: deploy in-process and run one job through every phase."""

from __future__ import annotations

import json

import pytest
from morphware.runtime.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.chain


def test_devnet_embedded_runs_a_job_and_writes_deployment(tmp_path) -> None:
    out = tmp_path / "dep.json"
    result = CliRunner().invoke(app, ["devnet", "--embedded", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "settled: ACCEPTED" in result.output
    assert "job gas" in result.output
    dep = json.loads(out.read_text())
    assert dep["market"].startswith("0x") and dep["market_abi"]


def test_devnet_help_documents_embedded() -> None:
    result = CliRunner().invoke(app, ["devnet", "--help"])
    assert result.exit_code == 0
    assert "--embedded" in result.output and "anvil" in result.output
