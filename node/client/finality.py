"""The decisions of "wait until this transaction is final", pure so a fake clock can test them.

A node that serves `GET /tx/{hash}?wait=final&timeout=S` holds the request until the commit feed announces the
transaction (docs/API.md, `GET /tx/{hash}`), so the client asks once per `LONG_POLL_S` and is answered the moment
the block is final. A node that predates the long-poll ignores the parameters and answers at once; the client
sees that (the answer came back well before the wait it asked for) and falls back to polling every `POLL_S`. This
loop is the only one in the code base: every caller that waits for finality goes through `wait_final`.
"""

from __future__ import annotations

from typing import Any

from node.client import routes
from node.client.errors import NodeError, NodeRefused, NodeTimeout, NodeUnreachable
from node.client.request import Request

LONG_POLL_S = 10.0  # the longest single wait asked of a node; a deadline further away takes several requests
POLL_S = 0.05  # between answers of a node that does not long-poll (the old client loops' interval)
# Refusals that mean "not final yet" rather than "wrong question": unknown here (not gossiped to this node yet),
# the long-poll's own timeout, a busy node.
NOT_YET = frozenset({404, 408, 503, 504})


class FinalityWait:
    """One wait for `tx_hash` to be final on the node at `url`, with `timeout_s` from `now`."""

    def __init__(self, url: str, tx_hash: str, timeout_s: float, now: float) -> None:
        self.url = url
        self.tx_hash = tx_hash
        self.timeout_s = timeout_s
        self.deadline = now + timeout_s
        self.last = "unknown"

    def ask(self, now: float) -> tuple[Request, float]:
        """The next request and how long it asks the node to hold it."""
        wait_s = round(max(0.0, min(LONG_POLL_S, self.deadline - now)), 3)
        return routes.tx(self.tx_hash, wait_final_s=wait_s), wait_s

    def answered(self, doc: Any, asked_s: float, took_s: float, now: float) -> tuple[dict[str, Any] | None, float]:
        """After an answer: the final document, or None and the pause before asking again; NodeTimeout once the
        deadline has passed."""
        if isinstance(doc, dict) and doc.get("status") == "final":
            return doc, 0.0
        if isinstance(doc, dict):
            self.last = str(doc.get("status"))
        return None, self._again(asked_s, took_s, now)

    def failed(self, error: NodeError, asked_s: float, took_s: float, now: float) -> float:
        """After an error: the pause before asking again, or the error itself when asking again cannot help."""
        if isinstance(error, NodeRefused) and error.status not in NOT_YET:
            raise error
        self.last = "unreachable" if isinstance(error, NodeUnreachable) else str(error)
        return self._again(asked_s, took_s, now)

    def _again(self, asked_s: float, took_s: float, now: float) -> float:
        if now >= self.deadline:
            raise NodeTimeout(
                self.url, f"transaction {self.tx_hash} not final after {self.timeout_s:g} s (last: {self.last})"
            )
        # A long-polling node held the request for (about) the wait asked; an answer well before it means the
        # node does not long-poll, or does not know the transaction yet: poll.
        held = asked_s > 0 and took_s >= asked_s / 2
        return 0.0 if held else min(POLL_S, max(0.0, self.deadline - now))
