"""Fixtures for the chain tests: one eth-tester chain + deployment per session, with funded,
approved and registered accounts; each test runs from an EVM snapshot and is reverted after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chain_testlib import Market, shared_market


@pytest.fixture(scope="session")
def market_session() -> Market:
    return shared_market()


@pytest.fixture
def m(market_session: Market) -> Iterator[Market]:
    snap = market_session.ctl.snapshot()
    market_session.salts.clear()
    try:
        yield market_session
    finally:
        market_session.ctl.revert(snap)
