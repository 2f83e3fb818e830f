"""When to ask a connected peer again after it refused one of our protocols.

A node asks every new connection for its ledger status (the chain handshake, node/ledger/repair.py). A light
client, a demo host or another implementation that does not serve `/ehrnet/ledger/1.0.0` refuses: it was asked
again every repair tick (0.5 s) for as long as it stayed connected. A refusal is now remembered: the next try
waits `first_s`, doubling to at most `max_s`; a peer that disconnects is forgotten (a new connection may be a
restarted node that now serves the protocol, and is asked at once). Pure: the caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _Refusals:
    count: int
    next_try: float


class RefusalBackoff:
    def __init__(self, first_s: float = 2.0, max_s: float = 120.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._peers: dict[str, _Refusals] = {}

    def may_ask(self, peer: str, now: float) -> bool:
        entry = self._peers.get(peer)
        return entry is None or entry.next_try <= now

    def refused(self, peer: str, now: float) -> float:
        """Record a refusal; returns the delay before `peer` may be asked again."""
        entry = self._peers.get(peer)
        count = 1 if entry is None else entry.count + 1
        delay = min(self.max_s, self.first_s * 2.0 ** (count - 1))
        self._peers[peer] = _Refusals(count, now + delay)
        return delay

    def answered(self, peer: str) -> None:
        self._peers.pop(peer, None)

    def keep_only(self, connected: Iterable[str]) -> None:
        """Forget peers no longer connected."""
        live = set(connected)
        for peer in [p for p in self._peers if p not in live]:
            del self._peers[peer]

    def refusals(self, peer: str) -> int:
        entry = self._peers.get(peer)
        return 0 if entry is None else entry.count
