"""One error tree for every client of a node's HTTP API, and the one place it becomes a CLI exit code.

What a caller needs to decide is whether the request can have had an effect: a node that could not be reached
saw nothing (`NodeUnreachable`), a refusal is the node's answer (`NodeRefused`), and a request that timed out or
lost its connection after it was sent may or may not have been carried out (`NodeTimeout`, `NodeConnectionLost`:
resend the same signed bytes; docs/API.md, "What an acknowledgement promises").
"""

from __future__ import annotations

from typing import Any

# `ehrnet` exit codes (docs/API.md, "Clients"): 0 done; 1 the node answered no, or not in time; 2 the command
# could not be carried out as asked (bad usage, a local file, no node to talk to).
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2


class NodeError(RuntimeError):
    """A request to a node did not give an answer the caller can use; the message names the node and why."""

    exit_code = EXIT_REFUSED

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class NodeUnreachable(NodeError):
    """No connection could be made (refused, no route, bad host): the node saw nothing of the request."""

    exit_code = EXIT_UNREACHABLE


class NodeConnectionLost(NodeError):
    """The connection broke after the request was sent: the node may or may not have carried it out."""

    exit_code = EXIT_UNREACHABLE


class NodeTimeout(NodeError):
    """No answer within the time allowed (or a wait on the node ended before its condition held)."""


class NodeRefused(NodeError):
    """The node answered with an HTTP error: `status`, its JSON `error` message and `code` when it gave one, and
    the whole JSON object in `doc` (a batch refusal lists there which transactions it took and which not)."""

    def __init__(
        self, url: str, status: int, message: str, code: str | None = None, doc: dict[str, Any] | None = None
    ) -> None:
        super().__init__(url, f"{status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.doc = doc or {}


class NodeBadAnswer(NodeError):
    """The node answered 2xx with something that is not what the API documents (not JSON, too large, ...)."""


def exit_code(error: NodeError) -> int:
    """The `ehrnet` exit code for a client error: every command group reports node errors through this."""
    return error.exit_code
