"""Training with every GEMM on the array: quantisation that cannot overflow, gradients that
match float ones, the training engine's guarantees on an array backend, and rtl == golden for
every command of a training step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from morphware.compiler.execute import GoldenBackend, RtlBackend
from morphware.compiler.training import (
    ACC_LIMIT,
    IntGemm,
    Operand,
    QTensor,
    fit_headroom,
    quantize_pair,
)
from morphware.runtime.backends.base import BackendError
from morphware.runtime.job.spec import TrainingRecipe
from morphware.runtime.model.array_training import array_module
from morphware.runtime.model.evaluation import evaluate
from morphware.runtime.model.safe_io import load_onnx
from morphware.runtime.model.training import TrainingError, train_onnx
from morphware.systolic.params import ArrayParams

SMALL = TrainingRecipe(learning_rate=0.01, epochs=2, batch_size=64, seed=3)


def _subset(src: Path, dst: Path, n: int = 256) -> Path:
    z = np.load(src)
    np.savez(dst, x=z["x"][:n], y=z["y"][:n])
    return dst


@pytest.mark.parametrize("bits", [8, 16])
def test_worst_case_operands_never_wrap_the_accumulator(bits: int) -> None:
    """Aligned, full-scale rows are the Cauchy-Schwarz worst case: the scales coarsen just
    enough that the exact product stays inside int32, and the array's raw output equals it."""
    k = 4096
    a = np.ones((3, k)) * np.array([[1.0], [-1.0], [0.5]])
    b = np.ones((k, 2)) * np.array([[2.0, -3.0]])
    noise = np.random.default_rng(0).random(a.shape)
    qa, qb = quantize_pair(Operand(a, None, noise), Operand(b, 0), bits)
    exact = qa.q @ qb.q
    assert np.abs(exact).max() <= ACC_LIMIT
    p = ArrayParams(8, 8, data_bits=bits)
    got = IntGemm(GoldenBackend(p), p).products([(qa.q, qb.q)])[0]
    np.testing.assert_array_equal(got, exact)
    np.testing.assert_allclose(got * qa.scale * qb.scale, a @ b, rtol=0.02)
    coarsened = np.abs(qa.q).max() < 2 ** (bits - 1) - 1
    assert coarsened == (bits == 16)  # int8 has room for K = 4096 at full scale


def test_headroom_solves_the_bound_and_refuses_the_impossible() -> None:
    u = fit_headroom(1e6, 10.0, True, 2e5, 5.0, True)
    assert 0 < u < 1 and (1e6 * u + 10) * (2e5 * u + 5) <= ACC_LIMIT
    assert fit_headroom(100.0, 1.0, True, 100.0, 1.0, False) == 1.0
    with pytest.raises(ValueError, match="too deep"):
        fit_headroom(1.0, 1e5, True, 1.0, 1e5, True)


def test_stochastic_rounding_is_unbiased_and_seeded() -> None:
    x = np.full((1, 20000), 0.3)  # 0.3 units of a scale set by the 127 below
    x[0, 0] = 127.0
    noise = np.random.default_rng(1).random(x.shape)
    q, _ = quantize_pair(Operand(x, None, noise), QTensor(np.ones((20000, 1), np.int64),
                                                           np.array(1.0)), 8)
    assert abs(q.q[0, 1:].mean() - 0.3) < 0.01  # nearest rounding would give 0
    again, _ = quantize_pair(Operand(x, None, noise), QTensor(np.ones((20000, 1), np.int64),
                                                               np.array(1.0)), 8)
    np.testing.assert_array_equal(q.q, again.q)


def _mlp(sizes: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    return torch.nn.Sequential(*layers)


def _convnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, stride=2), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 4))


def _onnx(net: torch.nn.Module, example: torch.Tensor, tmp: Path, export_module) -> object:  # type: ignore[no-untyped-def]
    return load_onnx(export_module(net, example, tmp / "m.onnx"))


def _step(model: object, engine: object, p: ArrayParams, x: torch.Tensor, y: torch.Tensor
          ) -> tuple[IntGemm, dict[str, torch.Tensor]]:
    """One training step (forward, cross-entropy, backward) with every GEMM recorded."""
    gemm = IntGemm(engine, p)
    gemm.record()
    module = array_module(model, gemm, p.data_bits)
    torch.manual_seed(5)  # stochastic rounding noise
    torch.nn.functional.cross_entropy(module(x), y).backward()
    return gemm, {n: t.grad for n, t in module.named_parameters()}


@pytest.mark.parametrize("bits", [8, 16])
def test_array_gradients_match_float_gradients(bits: int, tmp_path: Path, export_module) -> None:  # type: ignore[no-untyped-def]
    net = _convnet()
    x = torch.rand(6, 1, 6, 6) * 2 - 1  # signed inputs keep every ReLU unit alive
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    model = _onnx(net, x[:1], tmp_path, export_module)
    p = ArrayParams(4, 4, data_bits=bits)
    gemm, grads = _step(model, GoldenBackend(p), p, x, y)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    ref = [t.grad for t in net.parameters()]
    tol = 0.05 if bits == 8 else 0.002
    for got, want in zip(grads.values(), ref, strict=True):
        err = (got - want).norm() / want.norm()
        assert err < tol, f"int{bits}: relative gradient error {err:.4f}"
    # forward 2 products, backward: conv dW, dense dX and dW (the input needs no gradient)
    assert gemm.stats.products == 5
    assert all(c.raw for c, _ in gemm.stats.log)


def test_cycle_plan_from_the_manifest_equals_what_a_step_issues(tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                export_module) -> None:
    """What an array worker prices (GEMM shapes of the public manifest through the cycle model)
    is exactly what one training step makes the array do."""
    from morphware.compiler.training import GemmLayer, step_cycles
    from morphware.runtime.job.packaging import analyse_onnx

    from tests.support import zoo

    net, example = zoo.lenet()
    path = export_module(net, example, tmp_path / "lenet.onnx")
    layers = [GemmLayer(*g) for g in analyse_onnx(path)["gemms"]]
    assert [ly.input_grad for ly in layers] == [False, True, True, True]
    x = torch.rand(16, 1, 8, 8)
    y = torch.arange(16) % 10
    for p in (ArrayParams(8, 8), ArrayParams(16, 16, acc_depth=64)):
        gemm, _ = _step(load_onnx(path), GoldenBackend(p), p, x, y)
        assert gemm.stats.cycles == step_cycles(layers, 16, p)


@pytest.mark.rtl
def test_training_step_on_rtl_equals_golden_for_every_gemm(tmp_path: Path, export_module) -> None:  # type: ignore[no-untyped-def]
    """One step of a small MLP and of a small conv net, GEMMs on the Verilog in simulation and
    on the golden model: every command and every result identical, cycles = cycle model."""
    p = ArrayParams(4, 4)
    g = torch.Generator().manual_seed(0)
    cases = [(_mlp((12, 6, 3)), torch.rand(5, 12, generator=g), torch.tensor([0, 1, 2, 0, 1])),
             (_convnet(), torch.rand(3, 1, 6, 6, generator=g) * 2 - 1, torch.tensor([3, 1, 0]))]
    for i, (net, x, y) in enumerate(cases):
        d = tmp_path / str(i)
        d.mkdir()
        model = _onnx(net, x[:1], d, export_module)
        gold, gold_grads = _step(model, GoldenBackend(p), p, x, y)
        rtl, rtl_grads = _step(model, RtlBackend(p, "verilator"), p, x, y)
        assert len(gold.stats.log) == len(rtl.stats.log) == gold.stats.commands > 0
        for (gc, gr), (rc, rr) in zip(gold.stats.log, rtl.stats.log, strict=True):
            np.testing.assert_array_equal(gc.a, rc.a)
            np.testing.assert_array_equal(gc.w, rc.w)
            np.testing.assert_array_equal(gr.out, rr.out)
            assert rr.cycles == gr.cycles and rr.stall_cycles == 0
        for name in gold_grads:
            assert torch.equal(gold_grads[name], rtl_grads[name])


@pytest.mark.rtl
def test_training_step_through_the_fpga_driver_equals_golden(tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             export_module) -> None:
    """The fpga backend's engine, the driver, on the synthesizable top in simulation (SimIO):
    one step of a small MLP, a 16-row accumulator so products split by rows, every result and
    cycle count as on the golden model."""
    from morphware.runtime.backends.fpga_driver import FpgaDriver

    from tests.support.sim_mmio import SimIO

    p = ArrayParams(4, 4, acc_depth=16)
    # both sides of the first product exceed 16 rows, so whichever orientation the cycle model
    # picks for it, it takes several commands
    x = torch.rand(40, 12, generator=torch.Generator().manual_seed(1))
    y = torch.arange(40) % 3
    model = _onnx(_mlp((12, 24, 3)), x[:1], tmp_path, export_module)
    gold, gold_grads = _step(model, GoldenBackend(p), p, x, y)
    with SimIO(p, sim="icarus") as io:
        board, board_grads = _step(model, FpgaDriver(io, p), p, x, y)
    assert gold.stats.commands > gold.stats.products  # some products took several commands
    for (_, gr), (_, br) in zip(gold.stats.log, board.stats.log, strict=True):
        np.testing.assert_array_equal(gr.out, br.out)
        assert br.cycles == gr.cycles
    for name in gold_grads:
        assert torch.equal(gold_grads[name], board_grads[name])


def test_golden_training_checkpoints_resumes_and_exports(digits_onnx: Path, digits_data,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    train = _subset(digits_data[0], tmp_path / "train.npz")
    recipe = replace(SMALL, epochs=2)
    full = train_onnx(digits_onnx, train, recipe, tmp_path / "full.onnx", backend="golden",
                      bits=8)
    assert full.backend == "golden" and full.array["bits"] == 8
    steps = 2 * 4  # 256 samples in batches of 64
    assert full.array["products"] == 3 + steps * 8  # output check (3) + 8 per step (64-64-64-10)
    ckpt = tmp_path / "ckpt.pt"
    train_onnx(digits_onnx, train, replace(recipe, epochs=1), tmp_path / "a.onnx",
               backend="golden", bits=8, checkpoint=ckpt)
    import torch as t

    state = t.load(ckpt, weights_only=True)
    state["recipe"]["epochs"] = 2  # continue the same run to epoch 2
    t.save(state, ckpt)
    resumed = train_onnx(digits_onnx, train, recipe, tmp_path / "b.onnx", backend="golden",
                         bits=8, checkpoint=ckpt)
    assert resumed.loss_curve == full.loss_curve and resumed.step_losses == full.step_losses
    with pytest.raises(TrainingError, match="array int8 GEMMs, this run uses array int16"):
        train_onnx(digits_onnx, train, recipe, tmp_path / "c.onnx", backend="golden", bits=16,
                   checkpoint=ckpt)
    acc = evaluate(full.onnx_path, digits_data[1], "accuracy", backend="cpu")
    assert acc > 0.5  # the export is the float model of the trained weights


def test_nan_stops_array_training_like_float(digits_onnx: Path, digits_data, tmp_path: Path  # type: ignore[no-untyped-def]
                                              ) -> None:
    train = _subset(digits_data[0], tmp_path / "train.npz", 128)
    with pytest.raises(TrainingError, match="loss became nan"):
        train_onnx(digits_onnx, train, replace(SMALL, learning_rate=1e30, epochs=3),
                   tmp_path / "o.onnx", backend="golden", bits=16)


def test_bits_are_checked(digits_onnx: Path, digits_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendError, match="float32"):
        train_onnx(digits_onnx, digits_data[0], SMALL, tmp_path / "o.onnx", backend="cpu",
                   bits=8)
    with pytest.raises(BackendError, match="8 or 16"):
        train_onnx(digits_onnx, digits_data[0], SMALL, tmp_path / "o.onnx", backend="golden",
                   bits=4)
