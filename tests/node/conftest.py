"""Fixtures of the node tests (helpers live in node_helpers.py)."""

from __future__ import annotations

import pytest
from morphware.runtime.demo import LocalMarket


@pytest.fixture
def local_market(tmp_path):
    m = LocalMarket(tmp_path / "net", poll_interval=0.05)
    yield m
    m.close()
