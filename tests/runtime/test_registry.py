"""Backend discovery, selection and hardware profiles."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from morphware.runtime.backends.base import BackendError, reference_model
from morphware.runtime.backends.registry import all_backends, get_backend, select_backend, status
from onnx import TensorProto, helper


def test_all_five_backends_known() -> None:
    assert {"fpga", "rtl", "golden", "cuda", "cpu"} <= set(all_backends())


def test_status_rows_explain_themselves() -> None:
    rows = status()
    assert [r.priority for r in rows] == sorted((r.priority for r in rows), reverse=True)
    for r in rows:
        assert r.reason, f"{r.name} gives no reason"
    assert next(r for r in rows if r.name == "cpu").usable


def test_train_selection_prefers_cuda_then_cpu() -> None:
    chosen = select_backend("train")
    cuda_ok = get_backend("cuda").available()[0]
    assert chosen.name == ("cuda" if cuda_ok else "cpu")


def test_eval_selection_is_fastest_supporting_backend() -> None:
    model = reference_model()
    chosen = select_backend("eval", model)
    faster = [b for b in all_backends().values() if b.priority > chosen.priority]
    for b in faster:
        assert not (b.available()[0] and b.supports(model)[0]), f"{b.name} was skipped"


def _custom_op_model() -> onnx.ModelProto:
    node = helper.make_node("Hardmax", ["x"], ["y"])
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_no_backend_for_unsupported_op() -> None:
    with pytest.raises(BackendError, match="cpu: cpu cannot run op.*Hardmax"):
        select_backend("eval", _custom_op_model())


def test_unknown_names() -> None:
    with pytest.raises(BackendError, match="unknown backend 'tpu'"):
        get_backend("tpu")
    with pytest.raises(BackendError, match="unknown task"):
        select_backend("mine")


def test_profile_is_measured_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path))
    cpu = get_backend("cpu")
    p1 = cpu.profile(min_seconds=0.05)
    assert p1.backend == "cpu" and p1.samples_per_s > 0
    assert p1.macs_per_s == pytest.approx(p1.samples_per_s * (64 * 64 * 2 + 64 * 10))
    assert (tmp_path / "profile-cpu.json").is_file()
    assert cpu.profile() == p1  # from the cache, not re-measured
    assert cpu.profile(refresh=True, min_seconds=0.05).measured_at > p1.measured_at


def test_program_backend_profile_and_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path))
    golden = get_backend("golden")
    if not golden.available()[0]:
        pytest.skip(golden.available()[1])
    small = golden.with_array("4x4")
    assert small.params.rows == 4 and golden.params.rows == 8  # type: ignore[attr-defined]
    prof = small.profile(min_seconds=0.05)
    assert prof.backend == "golden" and prof.samples_per_s > 0
    with pytest.raises(BackendError, match="like 8x8"):
        golden.with_array("eight")


def test_profile_for_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from morphware.runtime.backends.registry import profile_for

    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path))
    (tmp_path / f"profile-{select_backend('train').name}.json").write_text(
        '{"backend": "cpu", "samples_per_s": 5.0, "macs_per_s": 45000.0, "measured_at": 1.0}')
    prof = profile_for("train")
    assert prof.samples_per_s == 5.0  # the cached measurement is what bids use
