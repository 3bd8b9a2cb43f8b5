"""The training engine on CPU: digits accuracy, export that reloads, determinism, events,
checkpoint/resume, and clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from morphware.runtime.job.spec import TrainingRecipe
from morphware.runtime.model.evaluation import evaluate
from morphware.runtime.model.safe_io import DatasetError
from morphware.runtime.model.training import TrainingError, train_onnx

SMALL = TrainingRecipe(learning_rate=0.01, epochs=2, batch_size=128, seed=3)


def _subset(src: Path, dst: Path, n: int = 300) -> Path:
    z = np.load(src)
    np.savez(dst, x=z["x"][:n], y=z["y"][:n])
    return dst


def test_digits_reaches_95_percent_and_export_reloads(trained_digits, digits_data) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained_digits
    acc = evaluate(result.onnx_path, digits_data[1], "accuracy", backend="cpu")
    assert acc >= 0.95
    # the exported file is a fresh model: re-evaluating it from disk gives the same accuracy
    z = np.load(digits_data[1])
    from morphware.runtime.model.evaluation import accuracy, predict

    out, name = predict(result.onnx_path, z["x"], backend="cpu")
    assert name == "cpu" and accuracy(out, z["y"]) == acc
    assert result.backend == "cpu" and result.metrics["accuracy"] > 0.95


def test_events_and_curve(trained_digits, digits_recipe) -> None:  # type: ignore[no-untyped-def]
    result, events = trained_digits
    epochs = [e for e in events if e.kind == "epoch"]
    steps = [e for e in events if e.kind == "step"]
    assert [e.epoch for e in epochs] == list(range(1, digits_recipe.epochs + 1))
    assert len(steps) == len(result.step_losses) == digits_recipe.epochs * steps[0].total_steps
    assert [e.loss for e in epochs] == result.loss_curve
    assert result.loss_curve[-1] < result.loss_curve[0] / 3


def test_deterministic_given_seed(digits_onnx: Path, digits_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train = _subset(digits_data[0], tmp_path / "sub.npz")
    a = train_onnx(digits_onnx, train, SMALL, tmp_path / "a.onnx", backend="cpu")
    b = train_onnx(digits_onnx, train, SMALL, tmp_path / "b.onnx", backend="cpu")
    c = train_onnx(digits_onnx, train, replace(SMALL, seed=4), tmp_path / "c.onnx", backend="cpu")
    assert a.step_losses == b.step_losses
    assert a.step_losses != c.step_losses


def test_checkpoint_resume_equals_uninterrupted(digits_onnx: Path, digits_data,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    train = _subset(digits_data[0], tmp_path / "sub.npz")
    full = train_onnx(digits_onnx, train, SMALL, tmp_path / "full.onnx", backend="cpu")
    ckpt = tmp_path / "run.ckpt"
    one = replace(SMALL, epochs=1)
    train_onnx(digits_onnx, train, one, tmp_path / "part.onnx", backend="cpu", checkpoint=ckpt)
    with pytest.raises(TrainingError, match="different recipe"):
        train_onnx(digits_onnx, train, SMALL, tmp_path / "x.onnx", backend="cpu",
                   checkpoint=ckpt)
    # same recipe, interrupted after epoch 1: rewrite the checkpoint's recipe as SMALL's
    import torch

    state = torch.load(ckpt, weights_only=True)
    state["recipe"] = SMALL.to_dict()
    torch.save(state, ckpt)
    events = []
    resumed = train_onnx(digits_onnx, train, SMALL, tmp_path / "res.onnx", backend="cpu",
                         checkpoint=ckpt, on_event=events.append)
    assert resumed.step_losses == full.step_losses
    assert resumed.loss_curve == full.loss_curve
    # the run says where it resumed, and retrains only the epochs after the checkpoint
    assert events[0].kind == "resumed" and events[0].epoch == 1
    assert events[0].step == len(full.step_losses) // 2
    assert len([e for e in events if e.kind == "step"]) == len(full.step_losses) // 2


def test_corrupt_checkpoint_is_discarded_and_training_starts_over(  # type: ignore[no-untyped-def]
        digits_onnx: Path, digits_data, tmp_path: Path) -> None:
    train = _subset(digits_data[0], tmp_path / "sub.npz")
    fresh = train_onnx(digits_onnx, train, SMALL, tmp_path / "fresh.onnx", backend="cpu")
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 half a checkpoint, cut by a crash")
    with pytest.raises(TrainingError, match="unreadable checkpoint"):
        train_onnx(digits_onnx, train, SMALL, tmp_path / "x.onnx", backend="cpu", checkpoint=ckpt)
    events = []
    again = train_onnx(digits_onnx, train, SMALL, tmp_path / "again.onnx", backend="cpu",
                       checkpoint=ckpt, discard_bad_checkpoint=True, on_event=events.append)
    assert events[0].kind == "discarded" and "unreadable checkpoint" in events[0].note
    assert again.step_losses == fresh.step_losses  # exactly a first run
    assert ckpt.is_file()  # and the new run checkpointed again


def test_nan_loss_is_a_clear_error(digits_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "huge.npz"
    np.savez(bad, x=np.full((32, 64), 3e38, np.float32), y=np.arange(32) % 10)
    with pytest.raises(TrainingError, match="loss became"):
        train_onnx(digits_onnx, bad, SMALL, tmp_path / "o.onnx", backend="cpu")


def test_mismatched_data_is_a_clear_error(digits_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "wide.npz"
    np.savez(bad, x=np.zeros((8, 65), np.float32), y=np.zeros(8, np.int64))
    with pytest.raises(DatasetError, match=r"\(65,\) do not fit the model input \(64,\)"):
        train_onnx(digits_onnx, bad, SMALL, tmp_path / "o.onnx", backend="cpu")
    labels = tmp_path / "labels.npz"
    np.savez(labels, x=np.zeros((8, 64), np.float32), y=np.full(8, 12, np.int64))
    with pytest.raises(DatasetError, match="class label"):
        train_onnx(digits_onnx, labels, SMALL, tmp_path / "o.onnx", backend="cpu")


def test_training_backend_must_be_usable(digits_onnx: Path, digits_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrainingError, match="not usable"):  # no board here
        train_onnx(digits_onnx, digits_data[0], SMALL, tmp_path / "o.onnx", backend="fpga")


def test_cnn_with_batchnorm_trains_from_flat_images(tmp_path: Path, export_module,  # type: ignore[no-untyped-def]
                                                    digits_data) -> None:
    """A CNN (Conv/BN/Relu/Flatten/Gemm) takes the flat 64-feature digits as 1x8x8 images; its
    BatchNorm statistics move during training and the export carries them."""
    import onnx
    from onnx import numpy_helper

    from tests.support import zoo

    net, example = zoo.cnn_bn()
    src = export_module(net, example, tmp_path / "cnn.onnx")
    train = _subset(digits_data[0], tmp_path / "sub.npz", n=256)
    res = train_onnx(src, train, replace(SMALL, epochs=2), tmp_path / "out.onnx", backend="cpu")
    assert res.loss_curve[1] < res.loss_curve[0]
    stats = {t.name: numpy_helper.to_array(t) for t in onnx.load(res.onnx_path).graph.initializer
             if "running_mean" in t.name}
    before = net[1].running_mean.detach().numpy()
    assert stats and not any(np.allclose(v, before) for v in stats.values())
    acc_cpu = evaluate(res.onnx_path, digits_data[1], "accuracy", backend="cpu")
    acc_golden = evaluate(res.onnx_path, digits_data[1], "accuracy", backend="golden")
    assert acc_cpu > 0.3 and abs(acc_golden - acc_cpu) <= 0.05
