"""Run benchmarks: ``python -m bench [--quick] [name ...]``.

Each ``bench/bench_<name>.py`` returns a Report; results go to bench/results/<name>.{json,md} and
a combined bench/results/SUMMARY.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from bench.report import RESULTS, save, to_markdown

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    failed: list[str] = []
    sections: list[str] = []
    for name in names:
        print(f"== bench {name}", flush=True)
        try:
            report = importlib.import_module(f"bench.bench_{name}").run(quick=args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
            continue
        save(report)
        md = to_markdown(report)
        print(md, flush=True)
        sections.append(md)
    if sections:  # every benchmark's latest results, not only the ones just run
        latest = [(RESULTS / f"{n}.md").read_text() for n in available()
                  if (RESULTS / f"{n}.md").is_file()]
        (RESULTS / "SUMMARY.md").write_text("# Benchmark results\n\n" + "\n".join(latest))
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
