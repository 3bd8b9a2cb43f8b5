"""The hls4ml plug-in entry point and the ``morphware compile`` / ``run`` commands."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_testlib import sample_inputs
from morphware.compiler import Program, execute, frontend
from morphware.runtime.cli import app
from typer.testing import CliRunner

from tests.support import zoo


@pytest.fixture(scope="module")
def lenet_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    module, x = zoo.build("lenet")
    import onnx

    onnx.save(frontend.export_torch(module, x), d / "lenet.onnx")
    np.savez(d / "calib.npz", x=sample_inputs((1, 8, 8), 32, seed=1))
    np.savez(d / "x.npz", x=sample_inputs((1, 8, 8), 3, seed=2))
    return d


def test_hls4ml_convert_with_systolic_backend(tmp_path) -> None:
    import hls4ml

    module, x = zoo.build("mlp")
    wrapper = frontend.clean(frontend.export_torch(module, x))
    calib = sample_inputs((64,), 32, seed=1)
    hm = hls4ml.converters.convert_from_onnx_model(
        wrapper, output_dir=str(tmp_path), backend="Systolic", hls_config=frontend.HLS_CONFIG,
        rows=4, cols=4, calibration=calib)
    assert hm.systolic_program.params.rows == 4
    hm.write()
    loaded = Program.load(tmp_path / "program.mwp")
    assert np.array_equal(hm.predict(calib[:4]), execute(loaded, calib[:4]))


def test_hls4ml_systolic_without_calibration_is_a_clear_error(tmp_path) -> None:
    from morphware.compiler import CompileError

    module, x = zoo.build("mlp")
    wrapper = frontend.clean(frontend.export_torch(module, x))
    with pytest.raises(CompileError, match="needs calibration data"):
        frontend.to_hls(wrapper, "Systolic", output_dir=str(tmp_path))


def test_cli_compile_and_run(lenet_files) -> None:
    d = lenet_files
    r = CliRunner().invoke(app, ["compile", str(d / "lenet.onnx"), "--array", "4x4",
                                 "--calib", str(d / "calib.npz"), "-o", str(d / "out")])
    assert r.exit_code == 0, r.output
    assert "/0/Conv" in r.output and "maxpool" in r.output
    program = Program.load(d / "out" / "program.mwp")
    r = CliRunner().invoke(app, ["run", str(d / "out"), "--inputs", str(d / "x.npz"),
                                 "-o", str(d / "y.npz")])
    assert r.exit_code == 0, r.output
    with np.load(d / "y.npz") as z:
        assert np.array_equal(z["y"], execute(program, np.load(d / "x.npz")["x"]))


def test_cli_reports_bad_calibration(lenet_files) -> None:
    d = lenet_files
    np.savez(d / "bad.npz", x=np.zeros((4, 3), np.float32))
    r = CliRunner().invoke(app, ["compile", str(d / "lenet.onnx"), "--calib", str(d / "bad.npz"),
                                 "-o", str(d / "o2")])
    assert r.exit_code == 2
    assert "calibration data: shape (4, 3)" in r.output


def test_hls_route_c_simulation_agrees_with_float(tmp_path) -> None:
    from morphware.compiler.hls_route import build_hls

    module, _ = zoo.build("mlp")
    res = build_hls(module, sample_inputs((64,), 8, seed=3), tmp_path / "hls")
    assert (tmp_path / "hls").is_dir()
    assert res.top1_agreement >= 0.75 and res.max_abs_error < 0.1


def test_cli_compile_timeout_bounds_the_front_end(lenet_files, monkeypatch) -> None:
    """``--timeout`` is the bound the front end's preparation child process runs under; when it
    runs out the command ends with the error, exit code 2."""
    from morphware.compiler import CompileError, prepare

    seen = []

    def too_slow(data, where, timeout_s, *a, **k):  # noqa: ANN001, ANN002, ANN003
        seen.append(timeout_s)
        raise CompileError(f"{where}: preparation did not finish within {timeout_s:g} s")

    monkeypatch.setattr(prepare, "prepare", too_slow)
    d = lenet_files
    r = CliRunner().invoke(app, ["compile", str(d / "lenet.onnx"), "--calib", str(d / "calib.npz"),
                                 "--timeout", "7", "-o", str(d / "o3")])
    assert r.exit_code == 2 and seen == [7.0], r.output
    assert "within 7 s" in r.output
