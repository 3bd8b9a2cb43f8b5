"""Static checks of the ws RTL: Verilator -Wall lint, Icarus elaboration, Yosys synthesis."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams
from morphware.systolic.toolchain import simulator_env

pytestmark = pytest.mark.rtl

CONFIGS = [(8, 8, 8, 256), (3, 5, 8, 256), (1, 1, 16, 1), (16, 16, 8, 256), (2, 7, 16, 64)]


@pytest.mark.parametrize("rows,cols,bits,depth", CONFIGS)
def test_verilator_lint_clean(rows: int, cols: int, bits: int, depth: int) -> None:
    c = get_circuit()
    params = c.hdl_parameters(ArrayParams(rows, cols, bits, acc_depth=depth))
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", c.toplevel,
           *[f"-G{k}={v}" for k, v in params.items()], *map(str, c.rtl_sources)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=simulator_env(), timeout=120)
    assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_icarus_elaborates_with_g2012(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    c = get_circuit()
    out = tmp_path / "a.vvp"
    proc = subprocess.run(["iverilog", "-g2012", "-Wall", "-o", str(out), "-s", c.toplevel,
                           "-P", f"{c.toplevel}.R=3", "-P", f"{c.toplevel}.C=5",
                           *map(str, c.rtl_sources)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_yosys_8x8_has_no_latches() -> None:
    """Word-level synthesis (the full synth_xilinx run lives in the bench and the CLI)."""
    from morphware.systolic.resources import estimate

    res = estimate(ArrayParams(8, 8), "generic")
    assert res["latches"] == 0
    assert res["DSP"] >= 64  # one multiplier per PE survives as a $macc/$mul cell
    assert res["FF"] > 0


SUPPORT_RTL = Path(__file__).resolve().parents[1] / "support" / "rtl"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize("ecp5", [False, True], ids=["behavioural", "ecp5-mult18x18d"])
@pytest.mark.parametrize("aw,bw", [(8, 8), (16, 16), (17, 17)])
def test_ws_mul_both_forms_match_their_definition(tmp_path: Path, ecp5: bool, aw: int,
                                                  bw: int) -> None:
    """The ECP5 form (MULT18X18D with its own registers, used by place and route) and the
    behavioural form (simulation, other FPGAs) compute the same registered product."""
    rtl = Path(get_circuit().rtl_sources[0])
    assert rtl.name == "ws_mul.v"
    extra = ["-DMORPHWARE_ECP5", str(SUPPORT_RTL / "ecp5_mult18x18d.v")] if ecp5 else []
    out = tmp_path / "tb.vvp"
    build = subprocess.run(["iverilog", "-g2012", "-o", str(out), "-s", "ws_mul_tb",
                            "-P", f"ws_mul_tb.AW={aw}", "-P", f"ws_mul_tb.BW={bw}", *extra,
                            str(rtl), str(SUPPORT_RTL / "ws_mul_tb.v")],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", str(out)], capture_output=True, text=True, timeout=120)
    assert "PASS" in run.stdout and "FAIL" not in run.stdout, run.stdout + run.stderr
