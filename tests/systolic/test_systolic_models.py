"""Pure-Python tests of the golden model, the cycle model, stream packing and the registries."""

from __future__ import annotations

import numpy as np
import pytest
from morphware.systolic import regmap, streams
from morphware.systolic.circuit import circuits, get_circuit
from morphware.systolic.cycle_model import gemm_cycles, gemm_phases, slot_cycles, utilization
from morphware.systolic.golden import FLOAT_EXACT, exact_matmul, gemm, wrap
from morphware.systolic.params import ArrayParams

P8 = ArrayParams(4, 4)


def test_wrap_is_twos_complement() -> None:
    assert wrap(np.array([2**31, -(2**31) - 1, 5]), 32).tolist() == [-(2**31), 2**31 - 1, 5]


def test_golden_rounds_half_up_and_saturates() -> None:
    a = np.array([[1], [3], [-1], [-3], [127]])
    w = np.array([[1]])
    out = gemm(a, w, np.array([0]), np.array([1]), np.array([1]), P8)
    # (x + 1) >> 1: 1 -> 1, 3 -> 2, -1 -> 0, -3 -> -1, 127 -> 64
    assert out[:, 0].tolist() == [1, 2, 0, -1, 64]
    big = gemm(np.full((1, 4), 127), np.full((4, 1), 127), np.array([0]), np.array([1]),
               np.array([0]), P8)
    assert big[0, 0] == 127
    low = gemm(np.full((1, 4), -128), np.full((1, 4), 127).T, np.array([0]), np.array([1]),
               np.array([0]), P8, relu=False)
    assert low[0, 0] == -128


def test_exact_matmul_matches_integer_arithmetic_on_both_paths() -> None:
    rng = np.random.default_rng(7)
    for lo, hi, k in ((-128, 128, 300), (-32768, 32768, 2048)):  # the float64 (BLAS) path
        a = rng.integers(lo, hi, (17, k), dtype=np.int64)
        w = rng.integers(lo, hi, (k, 5), dtype=np.int64)
        assert np.array_equal(exact_matmul(a, w), a @ w)
    big = np.int64(2**26)  # 2**26 x 2**26 x 4 = 2**54: past float64's exact range
    a = np.full((2, 4), big, np.int64)
    a[0, 0] += 1  # an odd term the float path would round away
    w = np.full((4, 3), big, np.int64)
    assert int(big) ** 2 * 4 >= FLOAT_EXACT
    assert np.array_equal(exact_matmul(a, w), a @ w)


def test_golden_raw_wraps_bias_add() -> None:
    out = gemm(np.array([[1]]), np.array([[1]]), np.array([2**31 - 1]), np.array([1]),
               np.array([0]), P8, raw=True)
    assert out[0, 0] == -(2**31)


def test_golden_relu_clamps_negatives() -> None:
    out = gemm(np.array([[-5, 2]]), np.array([[1], [1]]), np.array([0]), np.array([1]),
               np.array([0]), P8, relu=True)
    assert out[0, 0] == 0


@pytest.mark.parametrize("bad", [
    dict(a=np.array([[200]])),
    dict(mult=np.array([1 << 16])),
    dict(shift=np.array([48])),
])
def test_golden_rejects_out_of_range(bad: dict) -> None:
    args = dict(a=np.array([[1]]), w=np.array([[1]]), bias=np.array([0]), mult=np.array([1]),
                shift=np.array([0]))
    args.update(bad)
    with pytest.raises(ValueError):
        gemm(args["a"], args["w"], args["bias"], args["mult"], args["shift"], P8)


def test_cycle_model_phases_sum_and_formula() -> None:
    p = ArrayParams(16, 16)
    ph = gemm_phases(64, 64, 64, p)
    assert sum(ph.values()) == gemm_cycles(64, 64, 64, p)
    # prologue R+3, 15 slots of 64, last pass 64, pipeline R+C+2 (PE) +8 (output stage), flush 2
    assert gemm_cycles(64, 64, 64, p) == 19 + 15 * 64 + 64 + 42 + 2


def test_cycle_model_slot_never_shorter_than_weight_load() -> None:
    p = ArrayParams(8, 32)
    assert slot_cycles(1, p) == 16  # ceil(C/2) keeps the parameter ring safe
    assert slot_cycles(1, ArrayParams(8, 8)) == 11  # R + 3 beats must fit in one slot
    assert slot_cycles(100, ArrayParams(8, 8)) == 100


def test_utilization_targets_of_the_issue() -> None:
    p = ArrayParams(16, 16)
    assert utilization(256, 256, 256, p) >= 0.95
    assert utilization(64, 64, 64, p) >= 0.85


def test_cycle_model_rejects_oversized_m() -> None:
    with pytest.raises(ValueError, match="acc_depth"):
        gemm_cycles(257, 8, 8, ArrayParams(8, 8))


def test_stream_images_roundtrip_through_hex() -> None:
    p = ArrayParams(3, 5)
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (4, 7))
    beats = streams.activation_beats(a, 6, p)
    assert beats.shape == (2 * 3 * 4, 3)  # NT=2, KT=3, M=4
    assert beats[4 + 1].tolist() == a[1, 3:6].tolist()  # second K tile, row 1
    assert beats[2 * 4 + 0].tolist() == [a[0, 6], 0, 0]  # zero-padded tail of K
    lines = streams.to_hex_lines(beats, 8)
    assert lines[0] == bytes(np.array(a[0, :3], dtype=np.int8).tobytes()[::-1]).hex()


def test_weight_stream_order_and_outputs() -> None:
    p = ArrayParams(2, 2)
    w = np.arange(12).reshape(4, 3) - 6
    bias, mult, shift = np.array([-1, 2, 3]), np.array([7, 8, 9]), np.array([1, 2, 3])
    beats = streams.weight_beats(w, bias, mult, shift, p)
    assert beats.shape == (2 * (2 * 2 + 3), 2)
    assert beats[0].tolist() == w[0, :2].tolist()
    assert beats[2:5].tolist() == [[-1, 2], [7, 8], [1, 2]]  # params after first K tile
    assert beats[5].tolist() == w[2, :2].tolist()
    assert beats[7 + 2].tolist() == [3, 0]  # N tile 1 params, padded lane
    lines = streams.to_hex_lines(beats, 32)
    back = streams.from_hex_lines(lines, 2)
    assert np.array_equal(back, beats)
    out = streams.output_matrix(np.arange(12).reshape(6, 2), 3, 3, p)
    assert out.tolist() == [[0, 1, 6], [2, 3, 8], [4, 5, 10]]


def test_check_call_names_the_bad_operand() -> None:
    p = ArrayParams(2, 2, acc_depth=4)
    ok = dict(a=np.ones((2, 2)), w=np.ones((2, 3)), bias=np.zeros(3), mult=np.ones(3),
              shift=np.zeros(3))
    with pytest.raises(ValueError, match="bias"):
        streams.check_call(**{**ok, "bias": np.zeros(2)}, p=p)
    with pytest.raises(ValueError, match="rows"):
        streams.check_call(**{**ok, "a": np.ones((5, 2))}, p=p)


def test_regmap_offsets_are_distinct_and_aligned() -> None:
    offs = [r.offset for r in regmap.REGISTERS]
    assert len(set(offs)) == len(offs)
    assert all(o % 4 == 0 and o < (1 << regmap.ADDR_BITS) for o in offs)
    assert regmap.decode_info(8 | 5 << 8 | 16 << 16 | 32 << 24) == {
        "rows": 8, "cols": 5, "data_bits": 16, "acc_bits": 32}


def test_circuit_registry() -> None:
    assert "ws" in circuits()
    c = get_circuit("ws")
    assert all(f.exists() for f in c.sim_sources())
    assert c.hdl_parameters(ArrayParams(3, 5))["C"] == 5
    with pytest.raises(ValueError, match="unknown circuit"):
        get_circuit("nope")
