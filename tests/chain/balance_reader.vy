# pragma version ~=0.4.3
"""Test helper: the summed ERC-20 balance of many holders in one call."""

from ethereum.ercs import IERC20


@external
@view
def total_of(token: IERC20, holders: DynArray[address, 64]) -> uint256:
    total: uint256 = 0
    for h: address in holders:
        total += staticcall token.balanceOf(h)
    return total
