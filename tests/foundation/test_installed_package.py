"""`pip install morphware` works without the repository (issue 19).

Builds the sdist and the wheel from it (as a package index would), installs the wheel into a fresh
virtualenv outside the checkout (torch's CPU build first, then the wheel with its dependencies from
the configured index: nothing is borrowed from the test's own environment), and runs there what a
new user would: ``morphware doctor``, ``demo``, ``compile``, and ``verify`` without and then with
the ``[rtl]`` extra. One virtualenv serves the whole module.

Minutes of work, most of it pip installing the dependencies, so it is ``slow`` (``make test-wheel``
runs it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.wheel]

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"  # the Makefile's TORCH_VERSION: a local CPU wheel on the project machines
PIP_TIMEOUT_S = 1800


@dataclass
class Installed:
    """A fresh virtualenv holding the wheel, and a working folder outside the checkout."""

    prefix: Path
    cwd: Path
    env: dict[str, str]
    wheel: Path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.prefix / "bin" / args[0]), *args[1:]], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def pip_install(self, *args: str) -> None:
        out = self.run("python", "-m", "pip", "install", "-q", "--no-compile", *args,
                       timeout=PIP_TIMEOUT_S)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _clean_env(tmp: Path, prefix: Path) -> dict[str, str]:
    """os.environ without anything that points into the checkout or the test's own venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")}
    outside = [p for p in env.get("PATH", "").split(os.pathsep)
               if p and not Path(p).resolve().is_relative_to(ROOT)
               and not Path(p).resolve().is_relative_to(Path(sys.prefix).resolve())]
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), *outside])
    env["MORPHWARE_CACHE"] = str(tmp / "cache")
    env["MORPHWARE_TOOLS"] = str(tmp / "tools")
    env["COLUMNS"] = "250"  # doctor's tables: no fix folded across lines
    return env


def build_wheel(out: Path) -> tuple[Path, str]:
    """sdist, then the wheel from the sdist; returns the wheel and the build's output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return next(out.glob("morphware-*.whl")), done.stdout + done.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory,
              built: tuple[Path, str]) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("user")
    prefix = tmp / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(prefix)
    (tmp / "work").mkdir()
    inst = Installed(prefix, tmp / "work", _clean_env(tmp, prefix), built[0])
    inst.pip_install(TORCH)
    inst.pip_install(str(inst.wheel))
    yield inst


def test_build_is_clean_and_metadata_has_one_version(built: tuple[Path, str]) -> None:
    wheel, log = built
    assert not [line for line in log.splitlines() if re.search(r"warning", line, re.I)], log
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        names = z.namelist()
    assert "License-Expression: MIT" in meta
    assert not re.search(r"^Classifier: License ::", meta, re.M)
    version = re.search(r"^Version: (\S+)", meta, re.M).group(1)
    assert wheel.name.startswith(f"morphware-{version}-")
    for f in ("job.toml", "model.py", "data/train.npz", "data/test.npz"):
        assert f"morphware/examples/digits/{f}" in names


def test_doctor_passes_for_the_node_roles_and_names_extras(installed: Installed) -> None:
    out = installed.run("morphware", "doctor", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "installed package" in out.stdout
    assert "make setup" not in out.stdout and ".venv/bin/pip" not in out.stdout
    researcher = next(line for line in out.stdout.splitlines()
                      if re.search(r"│ researcher\s+│", line))  # the roles table's row
    assert "not ready" in researcher and "pip install 'morphware[rtl]'" in researcher


def test_version_matches_the_wheel(installed: Installed) -> None:
    out = installed.run("morphware", "--version")
    assert out.returncode == 0, out.stderr
    assert installed.wheel.name.startswith(out.stdout.strip().replace(" ", "-") + "-")


def test_compile_of_a_small_onnx_model(installed: Installed) -> None:
    model = installed.cwd / "mlp.onnx"
    export = installed.run("python", "-c", (
        "import torch; torch.manual_seed(0); "
        "m = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)); "
        f"torch.onnx.export(m.eval(), (torch.zeros(1, 16),), {str(model)!r}, dynamo=False, "
        "input_names=['x'], output_names=['y'])"))
    assert export.returncode == 0, export.stderr
    out = installed.run("morphware", "compile", str(model), "--array", "4x4", "-o", "out")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (installed.cwd / "out" / "program.mwp").is_file()


def test_demo_runs_to_a_paid_result(installed: Installed) -> None:
    out = installed.run("morphware", "demo", "--quiet", "--timeout", "600", timeout=700)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"job \d+: ACCEPTED", out.stdout), out.stdout


def test_verify_says_which_extra_then_runs_once_it_is_installed(installed: Installed) -> None:
    args = ("morphware", "verify", "--rows", "2", "--cols", "2", "--sim", "icarus")
    missing = installed.run(*args)
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert "pip install 'morphware[rtl]'" in missing.stderr
    installed.pip_install(f"morphware[rtl] @ {installed.wheel.as_uri()}")
    out = installed.run(*args, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "cases passed" in out.stdout
