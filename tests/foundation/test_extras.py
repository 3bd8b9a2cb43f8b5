"""Optional extras: pyproject.toml and the code agree on them, and a command whose extra is missing
ends in one line that names the extra, never a traceback."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from morphware.runtime import cli
from morphware.systolic import sim, toolchain

ROOT = Path(__file__).resolve().parents[2]


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_extra_module_belongs_to_a_distribution_of_that_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(toolchain.EXTRAS) == set(extras)
    for extra, modules in toolchain.EXTRAS.items():
        declared = {_dist(r) for r in extras[extra]}
        assert set(modules.values()) <= declared, (extra, set(modules.values()) - declared)


def test_makefile_installs_every_extra_that_shares_the_main_venv() -> None:
    line = next(x for x in (ROOT / "Makefile").read_text().splitlines() if "install -q -e" in x)
    installed = set(re.search(r"\.\[([^\]]*)\]", line).group(1).split(","))
    assert installed == set(toolchain.EXTRAS) - set(toolchain.SEPARATE_ENV)


def test_fix_fits_a_checkout_or_an_installed_package() -> None:
    assert toolchain.install_command("rtl", checkout=False) == "pip install 'morphware[rtl]'"
    assert toolchain.install_command("rtl", checkout=True) == "make setup"
    assert "own venv" in toolchain.install_command("pynq", checkout=True)
    assert toolchain.is_checkout()  # the tests run from the repository


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(toolchain.EXTRAS, "rtl", {"morphware_no_such_module": "nosuch"})
    monkeypatch.setattr(toolchain, "is_checkout", lambda: False)
    with pytest.raises(toolchain.MissingExtra) as e:
        toolchain.require_extra("RTL simulation", "rtl")
    assert e.value.extra == "rtl"
    assert "pip install 'morphware[rtl]'" in str(e.value)
    assert toolchain.extra_of("cocotb.triggers") is None  # the patched table no longer has it
    with pytest.raises(ValueError, match="unknown extra"):
        toolchain.require_extra("x", "nonsense")


def _run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              argv: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["morphware", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return int(e.value.code or 0), capsys.readouterr().err


def test_verify_without_the_rtl_extra_prints_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("cocotb") else real(name, *a))
    monkeypatch.setattr(toolchain, "is_checkout", lambda: False)
    code, err = _run_main(monkeypatch, capsys, ["verify", "--rows", "2", "--cols", "2",
                                                "--sim", "icarus"])
    assert code == cli.EXIT_MISSING
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'morphware[rtl]'" in err


def test_an_optional_module_missing_deep_inside_a_command_is_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def lacks_cocotb(**_: object) -> None:
        raise ModuleNotFoundError("No module named 'cocotb'", name="cocotb")

    monkeypatch.setattr(sim, "check_simulator", lambda s: lacks_cocotb())
    code, err = _run_main(monkeypatch, capsys, ["verify", "--sim", "icarus"])
    assert code == cli.EXIT_MISSING
    assert err.startswith("error: morphware verify needs the optional [rtl] extra")


def test_a_missing_base_dependency_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(s: str) -> None:
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(sim, "check_simulator", broken)
    monkeypatch.setattr(sys, "argv", ["morphware", "verify"])
    with pytest.raises(ModuleNotFoundError):
        cli.main()


def test_a_missing_simulator_program_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(toolchain.MissingTool, match="apt-get install -y iverilog"):
        toolchain.require_program("RTL simulation on icarus", "iverilog", "iverilog")
