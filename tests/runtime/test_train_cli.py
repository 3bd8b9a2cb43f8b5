"""``morphware train``, ``eval`` and ``backends`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

from morphware.runtime.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def test_backends_table() -> None:
    res = runner.invoke(app, ["backends"])
    assert res.exit_code == 0, res.output
    for name in ("fpga", "rtl", "golden", "cuda", "cpu"):
        assert name in res.output
    assert "pynq" in res.output  # the fpga backend says why it is not usable here


def _job(tmp_path: Path, train: Path, test: Path, epochs: int = 3) -> Path:
    model = Path(__file__).resolve().parents[2] / "examples" / "digits" / "model.py"
    job = tmp_path / "job.toml"
    job.write_text(f"""
[job]
name = "cli-digits"
[model]
source = "{model}"
input_shape = [64]
[data]
train = "{train}"
test = "{test}"
[training]
epochs = {epochs}
learning_rate = 0.01
[metric]
name = "accuracy"
threshold = 0.5
[market]
max_price = 1.0
""")
    return job


def test_train_then_eval(tmp_path: Path, digits_data) -> None:  # type: ignore[no-untyped-def]
    train, test = digits_data
    job = _job(tmp_path, train, test)
    out = tmp_path / "out"
    res = runner.invoke(app, ["train", str(job), "-o", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "train_result.json").read_text())
    assert summary["passes"] and summary["test_metric"]["accuracy"] > 0.5
    assert len(summary["loss_curve"]) == 3
    res = runner.invoke(app, ["eval", str(out / "trained.onnx"), str(test), "--backend", "cpu"])
    assert res.exit_code == 0 and f"{summary['test_metric']['accuracy']:.4f}" in res.output


def test_train_on_the_array_with_bits(tmp_path: Path, digits_data) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    z = np.load(digits_data[0])
    small = tmp_path / "train.npz"
    np.savez(small, x=z["x"][:512], y=z["y"][:512])
    job = _job(tmp_path, small, digits_data[1], epochs=2)
    out = tmp_path / "out"
    res = runner.invoke(app, ["train", str(job), "-o", str(out), "--backend", "golden",
                              "--bits", "16"])
    assert res.exit_code == 0, res.output
    assert "array: int16" in res.output and "GEMM commands" in res.output
    summary = json.loads((out / "train_result.json").read_text())
    assert summary["backend"] == "golden" and summary["array"]["cycles"] > 0
    assert summary["test_metric"]["accuracy"] > 0.5
    res = runner.invoke(app, ["train", str(job), "-o", str(tmp_path / "o2"), "--backend", "cpu",
                              "--bits", "8"])
    assert res.exit_code == 1 and "trains in float32" in res.output


def test_eval_errors_are_messages(tmp_path: Path, digits_onnx: Path, digits_data) -> None:  # type: ignore[no-untyped-def]
    res = runner.invoke(app, ["eval", str(digits_onnx), str(digits_data[1]), "--backend", "tpu"])
    assert res.exit_code == 1 and "unknown backend 'tpu'" in res.output
    res = runner.invoke(app, ["eval", str(digits_onnx), str(digits_data[1]), "--metric", "f1"])
    assert res.exit_code == 1 and "unknown metric 'f1'" in res.output
