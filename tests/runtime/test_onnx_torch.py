"""The ONNX -> torch converter: same outputs as the source module, trainable parameters,
BatchNorm in both modes, clear errors, and an export that reloads."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from morphware.runtime.model.onnx_torch import UnsupportedOpError, export_onnx, to_torch
from onnx import TensorProto, helper
from torch import nn


class _Cnn(nn.Module):
    """Conv/BN/MaxPool/AvgPool and a view(x.size(0), -1) flatten (Shape/Gather/... in ONNX)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2, stride=1)
        self.fc = nn.Linear(4 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg(self.pool(torch.relu(self.bn(self.conv(x)))))
        return torch.log_softmax(self.fc(x.view(x.size(0), -1)), dim=1)


class _Misc(nn.Module):
    """Grouped/strided/dilated conv, global pooling, transposes, concat, assorted activations."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.c1(x), 0.2)
        g = h.mean(dim=(2, 3), keepdim=True).flatten(1)
        t = torch.cat([torch.sigmoid(g), torch.tanh(g)], dim=1)
        y = self.fc(t) * 2.0 - 1.0
        return torch.softmax(y.transpose(0, 1).transpose(0, 1) / 3.0, dim=-1)


def _randomise_bn(bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("make,shape", [(_Cnn, (5, 1, 8, 8)), (_Misc, (3, 2, 9, 9))])
def test_matches_torch(make: type[nn.Module], shape: tuple[int, ...], tmp_path: Path,
    export_module) -> None:
    torch.manual_seed(0)
    m = make().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            _randomise_bn(mod)
    path = export_module(m, torch.randn(*shape), tmp_path / "m.onnx")
    conv = to_torch(path).eval()
    x = torch.randn(7, *shape[1:])  # another batch size than the export's
    torch.testing.assert_close(conv(x), m(x), atol=1e-5, rtol=1e-4)


def test_parameters_and_buffers(tmp_path: Path,
    export_module) -> None:
    torch.manual_seed(0)
    m = _Cnn().eval()
    conv = to_torch(export_module(m, torch.randn(2, 1, 8, 8), tmp_path / "m.onnx"))
    n_params = sum(p.numel() for p in conv.parameters())
    assert n_params == sum(p.numel() for p in m.parameters())  # BN scale/bias trainable
    assert sum(b.numel() for n, b in conv.named_buffers() if "running" in n) == 8


def test_batchnorm_train_mode_matches_torch(tmp_path: Path,
    export_module) -> None:
    torch.manual_seed(0)
    m = _Cnn().eval()
    _randomise_bn(m.bn)
    conv = to_torch(export_module(m, torch.randn(2, 1, 8, 8), tmp_path / "m.onnx"))
    x = torch.randn(6, 1, 8, 8)
    m.train()
    conv.train()
    torch.testing.assert_close(conv(x), m(x), atol=1e-5, rtol=1e-4)
    stats = {n: b for n, b in conv.named_buffers() if "running" in n}
    torch.testing.assert_close(stats["p_bn_running_mean"], m.bn.running_mean)
    torch.testing.assert_close(stats["p_bn_running_var"], m.bn.running_var)


def test_gradients_flow(tmp_path: Path,
    export_module) -> None:
    m = _Misc().eval()
    conv = to_torch(export_module(m, torch.randn(2, 2, 9, 9), tmp_path / "m.onnx"))
    out = conv(torch.randn(3, 2, 9, 9))
    (out * torch.randn_like(out)).sum().backward()  # softmax rows sum to 1: weight them
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())


def test_export_roundtrip(tmp_path: Path,
    export_module) -> None:
    torch.manual_seed(1)
    m = _Cnn().eval()
    conv = to_torch(export_module(m, torch.randn(2, 1, 8, 8), tmp_path / "a.onnx"))
    with torch.no_grad():
        for p in conv.parameters():
            p.add_(0.01)  # "training" changed the weights
    export_onnx(conv, torch.randn(1, 1, 8, 8), tmp_path / "b.onnx")
    again = to_torch(tmp_path / "b.onnx").eval()
    x = torch.randn(9, 1, 8, 8)
    torch.testing.assert_close(again(x), conv.eval()(x), atol=1e-5, rtol=1e-4)


def _single_node_model(op: str, **attrs: object) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_op_named() -> None:
    with pytest.raises(UnsupportedOpError, match="'the_node'.*'Hardmax'"):
        to_torch(_single_node_model("Hardmax"))


@pytest.mark.parametrize("op,ref", [("Relu", torch.relu), ("Sigmoid", torch.sigmoid),
                                    ("Tanh", torch.tanh), ("Identity", lambda t: t)])
def test_unary_ops(op: str, ref: object) -> None:
    x = torch.randn(2, 3)
    torch.testing.assert_close(to_torch(_single_node_model(op))(x), ref(x))  # type: ignore[operator]


def test_softmax_legacy_opset_coerces_to_2d() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    x = torch.randn(2, 3, 4)
    want = torch.softmax(x.reshape(2, 12), dim=1).reshape(2, 3, 4)
    torch.testing.assert_close(to_torch(model)(x), want)


@pytest.mark.parametrize("name", ["mlp", "lenet", "cnn_bn", "residual"])
def test_compiler_zoo_converts(name: str, tmp_path: Path, export_module) -> None:  # type: ignore[no-untyped-def]
    """Every model of the compiler's zoo converts, matches torch, and every backend that runs
    Programs can also take it (the zoo is what the compiler supports)."""
    from morphware.runtime.backends.program_common import program_ops
    from morphware.runtime.model.safe_io import load_onnx

    from tests.support import zoo

    net, example = zoo.build(name)
    path = export_module(net, example, tmp_path / f"{name}.onnx")
    conv = to_torch(path).eval()
    x = torch.rand(4, *example.shape[1:])
    torch.testing.assert_close(conv(x), net(x), atol=1e-5, rtol=1e-4)
    ops = {n.op_type for n in load_onnx(path).graph.node}
    assert ops <= program_ops(), f"{name}: {sorted(ops - program_ops())} missing from program_ops"
