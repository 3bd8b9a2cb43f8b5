"""The host link's view of the array in a LiteX SoC: one Wishbone region, its layout and the word
packing of stream beats. Shared by the gateware (``soc.ArrayCore``) and the host (``LitexIO``),
so the two cannot drift apart.

Region layout (byte offsets from the region's base):

* ``0x0000..0x003F`` — the array's AXI4-Lite registers (``morphware.systolic.regmap``), one
  Wishbone word per register;
* ``LINK_INFO`` — magic (bits 31:24) and the words per beat of the a (7:0), w (15:8) and o
  (23:16) streams;
* ``LEVELS`` — three words read in one burst: the words held in the a, w and o FIFOs;
* ``DEPTHS`` — the words each FIFO holds when full: (a | w << 16) and (o);
* ``A_WINDOW`` / ``W_WINDOW`` — any write in the window pushes one 32-bit word into that FIFO;
* ``O_WINDOW`` — any read in the window pops one word (0 when empty: the host reads only what
  ``LEVELS`` says is there).

Windows are ``WINDOW_WORDS`` long so a bridge's incrementing burst (Etherbone records, UART
bursts) stays inside one. A beat of ``bits`` bits travels as ``ceil(bits / 32)`` words, lowest
word first, lane 0 in the lowest bits (the AXI4-Stream lane order of ``regmap``).
"""

from __future__ import annotations

import numpy as np
from morphware.systolic.params import ArrayParams
from morphware.systolic.regmap import O_LANE_BITS, W_LANE_BITS

ARRAY_ORIGIN = 0x4000_0000  # where the SoC maps the region on its bus
REGION_SIZE = 0x2000
REGS_SIZE = 0x40
LINK_INFO = 0x100
LEVELS = 0x104          # 3 words: a, w and o FIFO levels
DEPTHS = 0x110          # 2 words: a_depth | w_depth << 16, o_depth
A_WINDOW = 0x1000
W_WINDOW = 0x1400
O_WINDOW = 0x1800
WINDOW_WORDS = 0x100
MAGIC = 0x4D            # "M"
DEFAULT_FIFO_WORDS = 512


def words_per_beat(bits: int) -> int:
    """32-bit words one beat of ``bits`` bits occupies on the bus."""
    return -(-bits // 32)


def beat_words(p: ArrayParams) -> dict[str, int]:
    """Words per beat of each stream of an array with parameters ``p``."""
    return {"a": words_per_beat(p.rows * p.data_bits), "w": words_per_beat(p.cols * W_LANE_BITS),
            "o": words_per_beat(p.cols * O_LANE_BITS)}


def link_info(p: ArrayParams) -> int:
    """The LINK_INFO register's value for ``p``."""
    w = beat_words(p)
    if max(w.values()) > 0xFF:
        raise ValueError(f"array {p.rows}x{p.cols} has beats wider than 255 bus words")
    return (MAGIC << 24) | w["o"] << 16 | w["w"] << 8 | w["a"]


def decode_link_info(value: int) -> dict[str, int]:
    """Split LINK_INFO; ``magic`` tells whether the region holds a Morphware array at all."""
    return {"magic": value >> 24, "a": value & 0xFF, "w": (value >> 8) & 0xFF,
            "o": (value >> 16) & 0xFF}


def pack_words(beats: np.ndarray, lane_bits: int) -> np.ndarray:
    """Beats (beats x lanes, signed lane values) -> uint32 words, ``words_per_beat`` per beat."""
    beats = np.asarray(beats, dtype=np.int64)
    n, lanes = beats.shape
    dtype = {8: "<u1", 16: "<u2", 32: "<u4"}[lane_bits]
    raw = (beats & ((1 << lane_bits) - 1)).astype(dtype).view(np.uint8).reshape(n, -1)
    nw = words_per_beat(lanes * lane_bits)
    padded = np.zeros((n, nw * 4), dtype=np.uint8)
    padded[:, : raw.shape[1]] = raw
    return padded.view("<u4").reshape(-1)


def unpack_words(words: np.ndarray, lanes: int) -> np.ndarray:
    """uint32 words of output beats (32-bit lanes) -> (beats, lanes) int64, sign-extended."""
    w = np.asarray(words, dtype=np.uint32)
    if w.size % lanes:
        raise ValueError(f"{w.size} output words do not make whole beats of {lanes} lanes")
    return w.view("<i4").reshape(-1, lanes).astype(np.int64)
