"""Real ImageNet graphs from the onnx package's ``light/`` data (constant weights) compile, run on
the golden executor and agree with the expected output shipped with them; the logits (their
final Softmax removed) agree with onnxruntime's float run within 2 % of max |logit|."""

from __future__ import annotations

import pytest
from morphware.systolic.params import ArrayParams

from tests.support import onnx_cases as oc


def _check(name: str) -> dict:
    row, program, rep = oc.evaluate_light(name, ArrayParams(16, 16))
    assert row["output_max_abs_error"] < 1e-3 and row["argmax_agree"] == 1.0, row
    assert row["logit_rel_error"] < 0.02, row
    assert row["golden_cycles"] == rep["total"]["cycles"]
    assert 0 < rep["total"]["utilization"] <= 1
    return rep


def test_squeezenet() -> None:
    rep = _check("squeezenet")
    ops = {r["op"] for r in rep["layers"]}
    assert "concat" in ops and "global_avgpool" in ops


@pytest.mark.slow
def test_resnet50() -> None:
    rep = _check("resnet50")
    assert len([r for r in rep["layers"] if r["where"] == "array"]) == 54
    assert sum(r["op"] == "add" for r in rep["layers"]) == 16
