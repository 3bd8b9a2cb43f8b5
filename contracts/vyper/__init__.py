"""Vyper sources of the market (token.vy, registry.vy, market.vy), shipped as package data."""
