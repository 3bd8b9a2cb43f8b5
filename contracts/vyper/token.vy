# pragma version ~=0.4.3
"""
@title Morphware token (MWT)
@notice An ERC-20 built entirely from snekmate's audited `erc20` module, with a supply fixed at
        deployment: the whole `initial_supply_` goes to the deployer, minting is not exported, and
        the constructor drops the deployer's minter role and ownership, so nobody can ever mint.
        Holders (the market included) can burn their own tokens. A deployment made with
        `dev_faucet_ = True` also has `faucet`, which mints a bounded amount to the caller: that is
        for local devnets and tests only.
"""

from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc20
initializes: erc20[ownable := ow]

exports: (
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.burn,
    erc20.is_minter,
    erc20.owner,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
)

# @dev Largest amount one faucet call may mint (10,000 tokens with 18 decimals).
FAUCET_MAX: public(constant(uint256)) = 10_000 * 10**18

dev_faucet: public(immutable(bool))


@deploy
def __init__(initial_supply_: uint256, dev_faucet_: bool):
    ow.__init__()
    erc20.__init__("Morphware Token", "MWT", 18, "Morphware Token", "1")
    dev_faucet = dev_faucet_
    if initial_supply_ > 0:
        erc20._mint(msg.sender, initial_supply_)
    # No admin: the deployer is neither minter nor owner once the supply exists.
    erc20.is_minter[msg.sender] = False
    ow._transfer_ownership(empty(address))


@external
def faucet(amount: uint256):
    """@notice Dev deployments only: mint `amount` (at most FAUCET_MAX) to the caller."""
    assert dev_faucet, "token: no faucet on this deployment"
    assert amount <= FAUCET_MAX, "token: faucet amount too large"
    erc20._mint(msg.sender, amount)
