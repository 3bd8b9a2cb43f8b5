"""The circuits: RTL, parameters, golden model, cycle model, cocotb drivers and resource estimates.

Entry points (see docs/systolic.md):

* ``params.ArrayParams`` — one array configuration;
* ``golden.gemm`` — the exact integer semantics of one GEMM command;
* ``cycle_model.gemm_cycles`` / ``gemm_phases`` — the exact cycles the RTL reports;
* ``commands.GemmCall`` / ``GemmResult`` — one GEMM command and its result, for every engine;
* ``sim.run_gemms`` — a batch of commands on the RTL in one Icarus/Verilator simulation;
* ``regmap`` / ``streams`` — the AXI4-Lite registers and AXI4-Stream beat images for host drivers;
* ``circuit.get_circuit`` — the plug-in registry; ``verify.run_suite`` — the verification suite;
* ``resources.estimate`` — Yosys LUT/FF/DSP/BRAM/latch counts.
"""
