"""The result format every benchmark returns, and its Markdown rendering.

A benchmark is a module ``bench/bench_<name>.py`` with ``run(quick: bool = False) -> Report``.
Figures in one Report are measured side by side in one run, so ratios between rows are fair.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Table:
    title: str
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    name: str
    tables: list[Table]
    targets: dict[str, bool] = field(default_factory=dict)  # "utilization@256 >= 95%": True
    meta: dict[str, Any] = field(default_factory=dict)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def to_markdown(report: Report) -> str:
    out = [f"## {report.name}", ""]
    for t in report.tables:
        out += [f"### {t.title}", ""]
        if t.rows:
            cols = list(t.rows[0].keys())
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "---|" * len(cols))
            for r in t.rows:
                out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
        out += [""] + [f"- {n}" for n in t.notes] + ([""] if t.notes else [])
    if report.targets:
        out += ["| target | met |", "|---|---|"]
        out += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in report.targets.items()]
        out.append("")
    return "\n".join(out)


def save(report: Report) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    report.meta.setdefault("when", time.strftime("%Y-%m-%dT%H:%M:%S"))
    report.meta.setdefault("machine", f"{platform.machine()} {platform.processor() or ''}".strip())
    path = RESULTS / f"{report.name}.json"
    path.write_text(json.dumps(asdict(report), indent=2, default=str))
    (RESULTS / f"{report.name}.md").write_text(to_markdown(report))
    return path
