"""scikit-learn digits: int8 top-1 accuracy of the compiled MLP and CNN within 1 point of float."""

from __future__ import annotations

import numpy as np
import pytest
from morphware.compiler import compile_model, execute
from morphware.systolic.params import ArrayParams

from tests.support import zoo


def _accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(y.argmax(axis=1) == labels))


@pytest.mark.parametrize(("name", "epochs"), [("mlp", 20), ("lenet", 15)])
def test_int8_accuracy_within_one_point_of_float(digits, name: str, epochs: int) -> None:
    import torch

    module, x0 = zoo.build(name, seed=0)
    shape = tuple(x0.shape[1:])
    xtr = digits["x_train"].reshape(-1, *shape)
    xte = digits["x_test"].reshape(-1, *shape)
    zoo.train(module, xtr, digits["y_train"], epochs=epochs)
    with torch.no_grad():
        acc_float = _accuracy(module(torch.from_numpy(xte)).numpy(), digits["y_test"])
    assert acc_float > 0.9  # the models do learn; otherwise the comparison means little
    program, _ = compile_model(module, ArrayParams(8, 8), xtr[:256], bits=8)
    acc_int8 = _accuracy(execute(program, xte), digits["y_test"])
    assert abs(acc_int8 - acc_float) <= 0.01, (acc_float, acc_int8)
