"""The wheel carries everything a node needs at run time, and the layout maps into morphware.*."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_parts_import_under_the_morphware_namespace() -> None:
    import morphware.bitstreams
    import morphware.compiler
    import morphware.contracts
    import morphware.runtime
    import morphware.systolic

    for mod, folder in [(morphware.compiler, "compiler"), (morphware.systolic, "systolic"),
                        (morphware.contracts, "contracts"), (morphware.runtime, "runtime"),
                        (morphware.bitstreams, "bitstreams")]:
        assert Path(mod.__file__).resolve().parent == ROOT / folder


def test_systolic_imports_neither_compiler_nor_runtime() -> None:
    code = ("import sys, morphware.systolic.golden, morphware.systolic.params; "
            "bad=[m for m in sys.modules if m.startswith(('morphware.runtime','morphware.compiler',"
            "'web3','libtorrent'))]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_wheel_contains_rtl_and_contract_sources(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("morphware-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    parts = ("compiler", "systolic", "contracts", "runtime", "bitstreams")
    expected = {
        "rtl": list((ROOT / "systolic" / "rtl").rglob("*.v")),
        "testbench": list((ROOT / "systolic" / "rtl").rglob("*.sv")),
        "vyper": list((ROOT / "contracts").rglob("*.vy")),
        "manifests": list((ROOT / "bitstreams").rglob("*.json")),
        "dashboard": list((ROOT / "runtime" / "dashboard").rglob("*.js")),
        "python": [p for part in parts for p in (ROOT / part).rglob("*.py")
                   if "__pycache__" not in p.parts],
        # the demo's default job and its data (setup.py ships examples/ as morphware/examples)
        "examples": [p for p in (ROOT / "examples").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts],
    }
    for kind, files in expected.items():
        assert files, f"no {kind} files found in the source tree"
        for f in files:
            rel = f.relative_to(ROOT)
            arc = "morphware/" + str(rel)
            assert arc in names, f"{kind} file {rel} missing from wheel as {arc}"
    assert any(n.endswith("runtime/cli/__init__.py") for n in names)
