"""The node: roles, execution backends, delivery, persistence, CLI and dashboard server."""
