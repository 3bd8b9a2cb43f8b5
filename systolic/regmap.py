"""The array's AXI4-Lite register map and AXI4-Stream formats: the contract with host drivers.

Registers are 32 bits wide at byte offsets (AXI4-Lite, 6 address bits). One command runs a tiled
GEMM (``golden.gemm``); the host:

1. writes ``M``, ``KTILES`` = ceil(K/R), ``NTILES`` = ceil(N/C) and ``FLAGS``;
2. writes ``CTRL.START`` (ignored while ``STATUS.BUSY``; a bad configuration sets
   ``STATUS.ERROR`` instead of starting);
3. streams ``weight_stream`` on ``s_axis_w`` and ``activation_stream`` on ``s_axis_a`` (both may
   be started before or after START; the array takes each beat when its schedule needs it) and
   receives ``M * NTILES`` beats on ``m_axis_o`` (``tlast`` on the final one);
4. waits for ``STATUS.DONE`` (also the ``irq`` output) and reads ``CYCLES`` / ``STALLS``.

Stream formats (lane i occupies bits ``[i*w, (i+1)*w)`` of TDATA, little-endian lanes):

* ``s_axis_a`` — R lanes of ``data_bits`` (two's complement). For each N tile j, for each K tile i,
  M beats: beat m holds ``A[m, i*R : (i+1)*R]`` (zero past K).
* ``s_axis_w`` — C lanes of 32 bits. For each N tile j, for each K tile i: R beats, beat k holding
  ``W[i*R + k, j*C : (j+1)*C]`` sign-extended (zero past K or N); after the R beats of the FIRST
  K tile (i == 0) of each N tile come 3 parameter beats for columns ``j*C : (j+1)*C``: bias (int32),
  mult (uint16 in the low bits), shift (0..47 in the low 6 bits).
* ``m_axis_o`` — C lanes of 32 bits. For each N tile j, M beats: beat m holds
  ``out[m, j*C : (j+1)*C]`` sign-extended to 32 bits (lanes past N are padding to discard).
"""

from __future__ import annotations

from dataclasses import dataclass

ADDR_BITS = 6

CTRL = 0x00        # W: bit 0 START (self-clearing)
STATUS = 0x04      # R: bit 0 BUSY, bit 1 DONE (sticky until the next START), bit 2 ERROR
M = 0x08           # RW: activation rows of the command, 1..acc_depth
KTILES = 0x0C      # RW: ceil(K / rows), >= 1
NTILES = 0x10      # RW: ceil(N / cols), >= 1
FLAGS = 0x14       # RW: bit 0 RELU, bit 1 RAW (output wrapped int32 acc + bias)
CYCLES = 0x18      # R: cycles of the last command (excludes stalls); equals cycle_model
STALLS = 0x1C      # R: cycles the last command waited on a stream (input empty / output full)
INFO = 0x20        # R: rows | cols << 8 | data_bits << 16 | acc_bits << 24
ACC_DEPTH = 0x24   # R: the largest M one command may use

CTRL_START = 1 << 0
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_ERROR = 1 << 2
FLAGS_RELU = 1 << 0
FLAGS_RAW = 1 << 1

W_LANE_BITS = 32
O_LANE_BITS = 32
PARAM_BEATS = 3  # bias, mult, shift


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str
    doc: str


REGISTERS: tuple[Register, ...] = (
    Register("CTRL", CTRL, "W", "bit 0 START"),
    Register("STATUS", STATUS, "R", "bit 0 BUSY, bit 1 DONE, bit 2 ERROR"),
    Register("M", M, "RW", "rows of A, 1..acc_depth"),
    Register("KTILES", KTILES, "RW", "ceil(K / rows)"),
    Register("NTILES", NTILES, "RW", "ceil(N / cols)"),
    Register("FLAGS", FLAGS, "RW", "bit 0 RELU, bit 1 RAW"),
    Register("CYCLES", CYCLES, "R", "cycles of the last command, stalls excluded"),
    Register("STALLS", STALLS, "R", "stall cycles of the last command"),
    Register("INFO", INFO, "R", "rows | cols<<8 | data_bits<<16 | acc_bits<<24"),
    Register("ACC_DEPTH", ACC_DEPTH, "R", "largest M per command"),
)


def flags(relu: bool, raw: bool) -> int:
    """The FLAGS register value."""
    return (FLAGS_RELU if relu else 0) | (FLAGS_RAW if raw else 0)


def decode_info(value: int) -> dict[str, int]:
    """Split the INFO register into the array's parameters."""
    return {"rows": value & 0xFF, "cols": (value >> 8) & 0xFF,
            "data_bits": (value >> 16) & 0xFF, "acc_bits": (value >> 24) & 0xFF}
