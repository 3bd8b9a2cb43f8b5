"""``morphware package``: writes the package; a bad job exits 1 with the field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from morphware.runtime.cli import app
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def test_package_command(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    res = CliRunner().invoke(app, ["package", str(EXAMPLE / "job.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "8,832 MACs/sample" in res.output
    names = {"model.onnx", "train.npz", "test.npz", "training.toml", "manifest.json"}
    assert names <= {p.name for p in out.iterdir()}
    first = json.loads((out / "manifest.json").read_text())["model"]["sha256"]
    again = CliRunner().invoke(app, ["package", str(EXAMPLE), "-o", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    # the recipe's seed fixes the initial weights, so packaging is reproducible
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["model"]["sha256"] \
        == first


def test_package_command_bad_field(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "job", ignore=shutil.ignore_patterns("package"))
    toml = tmp_path / "job" / "job.toml"
    toml.write_text(toml.read_text().replace("epochs = 20", 'epochs = "ten"'))
    res = CliRunner().invoke(app, ["package", str(toml)])
    assert res.exit_code == 1
    assert "[training].epochs must be a positive integer, got 'ten'" in res.output
