"""The roles a node can play, by the names ``NodeConfig.roles`` uses, and a node built with them.

The daemon does not import its roles (they import the daemon's helpers); whoever starts a node
hands it these.
"""

from __future__ import annotations

from typing import Any

from morphware.runtime.node.chain import Market
from morphware.runtime.node.daemon import Node, NodeConfig
from morphware.runtime.node.keystore import NodeKey
from morphware.runtime.node.requester import Requester
from morphware.runtime.node.validator import Validator
from morphware.runtime.node.worker import Worker

ROLE_CLASSES = {"requester": Requester, "worker": Worker, "validator": Validator}


def build_node(key: NodeKey, market: Market, config: NodeConfig, **kw: Any) -> Node:
    """A node playing the roles ``config`` names (``kw``: ``delivery``, ``on_event``)."""
    return Node(key, market, config, ROLE_CLASSES, **kw)
