"""Cost model: cycles of every GEMM command of a Program, and the per-layer compile report.

Cycles come from the target circuit's exact cycle model (``Circuit.cycles``; for the reference
``ws`` array ``morphware.systolic.cycle_model.gemm_cycles``, equal to the RTL's CYCLES register),
applied to every array command a GEMM instruction issues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from morphware.compiler.lower import m_chunks
from morphware.compiler.program import Program
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams


def gemm_commands(ins: dict[str, Any], batch: int, p: ArrayParams) -> list[tuple[int, int, int]]:
    """The (m, k, n) of each array command one GEMM instruction issues for ``batch`` samples."""
    m = batch * ins["m_per_sample"]
    g = int(ins.get("groups", 1))
    return [(rows, ins["k"], ins["n"] // g) for _, rows in m_chunks(m, p.acc_depth)] * g


def instruction_cycles(ins: dict[str, Any], batch: int, p: ArrayParams,
                       circuit: str = "ws") -> int:
    cycles = get_circuit(circuit).cycles
    return sum(int(cycles(m, k, n, p)) for m, k, n in gemm_commands(ins, batch, p))


def program_cycles(program: Program, batch: int = 1) -> int:
    """Predicted array cycles of one run of ``program`` on ``batch`` samples (host ops excluded)."""
    return sum(instruction_cycles(i, batch, program.params, program.circuit)
               for i in program.gemms)


@dataclass
class LayerRow:
    layer: str
    op: str
    where: str          # "array" or "host"
    macs: int           # per sample
    weight_bytes: int
    tiles: int          # K x N tiles per array command
    commands: int
    cycles: int         # predicted, for the report's batch
    utilization: float  # MACs / (cycles * R * C)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "op": self.op, "where": self.where, "MACs": self.macs,
                "weight_bytes": self.weight_bytes, "tiles": self.tiles, "commands": self.commands,
                "cycles": self.cycles, "utilization": round(self.utilization, 4)}


def layer_table(program: Program, batch: int = 1) -> list[LayerRow]:
    """One row per instruction that does work (quantize/dequantize bookkeeping folded away)."""
    p = program.params
    rows = []
    for ins in program.instructions:
        if ins["op"] == "gemm":
            macs = ins["m_per_sample"] * ins.get("macs_per_row", ins["k"] * ins["n"])
            cyc = instruction_cycles(ins, batch, p, program.circuit)
            wbytes = ins["k"] * ins["n"] * p.data_bits // 8 + ins["n"] * (4 + 2 + 1)
            op = ins["kind"] + ("+relu" if ins["relu"] else "") + ("(raw)" if ins["raw"] else "")
            if "group_choice" in ins:
                gc = ins["group_choice"]
                op += f"[g={gc['groups']}:{gc['layout']}]"
            rows.append(LayerRow(ins["layer"], op, "array", macs, wbytes,
                                 ins["k_tiles"] * ins["n_tiles"],
                                 len(gemm_commands(ins, batch, p)), cyc,
                                 macs * batch / (cyc * p.rows * p.cols) if cyc else 0.0))
        elif ins["op"] not in ("quantize", "dequantize"):
            rows.append(LayerRow(ins["layer"], ins["op"], "host", 0, 0, 0, 0, 0, 0.0))
    return rows


def report(program: Program, batch: int = 1) -> dict[str, Any]:
    """The compile report: layer table plus totals, as plain JSON-able data."""
    table = layer_table(program, batch)
    cyc = sum(r.cycles for r in table)
    macs = sum(r.macs for r in table)
    p = program.params
    return {
        "circuit": program.circuit, "array": f"{p.rows}x{p.cols}", "bits": p.data_bits, "batch": batch,
        "layers": [r.as_dict() for r in table],
        "total": {"MACs": macs, "cycles": cyc,
                  "weight_bytes": sum(r.weight_bytes for r in table),
                  "array_layers": sum(r.where == "array" for r in table),
                  "host_layers": sum(r.where == "host" for r in table),
                  "utilization": round(macs * batch / (cyc * p.rows * p.cols), 4) if cyc else 0.0},
    }


def format_table(rep: dict[str, Any]) -> str:
    """Plain-text layer table for the CLI."""
    cols = ["layer", "op", "where", "MACs", "weight_bytes", "tiles", "commands", "cycles",
            "utilization"]
    rows = [[str(r[c]) for c in cols] for r in rep["layers"]]
    t = rep["total"]
    rows.append(["TOTAL", "", f"{t['array_layers']}A/{t['host_layers']}H", str(t["MACs"]),
                 str(t["weight_bytes"]), "", "", str(t["cycles"]), str(t["utilization"])])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [f"circuit {rep['circuit']} array {rep['array']} int{rep['bits']} batch {rep['batch']}",
           line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
