"""The one client edge of a node's HTTP API: `NodeClient` (blocking, standard library) and `AsyncNodeClient`
(asyncio, over aiohttp or the standard library in a thread), one error tree, one exit-code mapping (docs/API.md,
"Clients"). Importing this package does not import aiohttp: `node.client.aio` is loaded only when asked for."""

from node.client.async_client import AsyncNodeClient
from node.client.client import NodeClient
from node.client.errors import (
    NodeBadAnswer,
    NodeConnectionLost,
    NodeError,
    NodeRefused,
    NodeTimeout,
    NodeUnreachable,
    exit_code,
)

__all__ = [
    "AsyncNodeClient",
    "NodeBadAnswer",
    "NodeClient",
    "NodeConnectionLost",
    "NodeError",
    "NodeRefused",
    "NodeTimeout",
    "NodeUnreachable",
    "exit_code",
]
