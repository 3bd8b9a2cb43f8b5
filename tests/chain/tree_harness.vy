# pragma version ~=0.4.3
"""Test helper: the registry's draw tree (append, prune, search) exposed for direct checks."""

from ethereum.ercs import IERC20

import registry
initializes: registry


@deploy
def __init__(token_: IERC20):
    registry.__init__(token_, 1, 0, 0)


@external
def push(owner: address, weight: uint256):
    registry._push_leaf(owner, 1, weight)


@external
def prune(i: uint256):
    registry._prune(i)


@external
@view
def search(limit: uint256, r: uint256) -> uint256:
    return registry._search(limit, r)


@external
@view
def prefix(i: uint256) -> uint256:
    return registry._prefix(i)
