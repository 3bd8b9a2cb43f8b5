"""The market on chain: Vyper sources (token, registry, market), compile, deploy, typed client."""
