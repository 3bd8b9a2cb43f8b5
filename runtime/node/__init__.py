"""The node daemon: SQLite state, keystore, chain loop and the requester, worker and validator roles."""
