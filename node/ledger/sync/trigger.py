"""When a node syncs final blocks, and from whom: a pure decision over what its peers have shown of their height.

Block sync used to run on a timer: every 0.5 s that a node had finalised nothing for 0.5 s, it asked every peer
for its status. With 16 validators on two cores a round often takes longer than that, so every node asked every
other one — O(N²) streams twice a second, which slowed the rounds further (round changes at load 14, ~5 blocks a
minute). Peers show their height anyway: a proposal or vote a peer originates for height h means it holds the
final blocks up to h - 1 (its machine only acts at the height after its last final block), and the handshake's
status names a height outright. So a node syncs as soon as a peer shows it is ahead, from that peer, and the
timer is left as a slow fallback for when gossip itself is broken: after `fallback_after_s` without a final block,
one peer's status every `fallback_every_s`, in turn — O(N) streams across the network, not O(N²).

A peer that showed a height but failed to serve the blocks (gone, too slow, or lying) is left out for
`retry_after_s` (doubling to `retry_max_s`) rather than asked again on its next message: a Byzantine peer's claims
cost one request per backoff, not one per message.

Pure: the caller passes the time (monotonic seconds) and the connected peers; tested with a fake clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass
class SyncTrigger:
    fallback_after_s: float = 3.0
    fallback_every_s: float = 1.0
    retry_after_s: float = 0.5
    retry_max_s: float = 8.0
    _shown: dict[str, int] = field(default_factory=dict)  # peer → highest final height it has shown us
    _benched: dict[str, tuple[float, float]] = field(default_factory=dict)  # peer → (usable again at, last pause)
    _last_probe: float = float("-inf")
    _probe_turn: int = 0

    def saw_final(self, peer: str, height: int) -> bool:
        """`peer` holds final blocks up to `height` (its status said so, or it sent a message for `height + 1`).
        True if that is more than it had shown before (the caller may want to sync now)."""
        if height <= self._shown.get(peer, -1):
            return False
        self._shown[peer] = height
        return True

    def saw_message(self, peer: str, message_height: int) -> bool:
        """`peer` originated a proposal or vote for `message_height`: it has finalised the height before."""
        return self.saw_final(peer, message_height - 1)

    def shown(self, peer: str) -> int:
        """The highest final height `peer` has shown (-1: none)."""
        return self._shown.get(peer, -1)

    def source(self, our_height: int, connected: Collection[str], now: float) -> str | None:
        """The peer to sync from now: of the connected peers not benched, the one that has shown the most final
        blocks beyond `our_height`; None if no peer has shown it is ahead."""
        best: str | None = None
        best_height = our_height
        for peer in connected:
            shown = self._shown.get(peer, -1)
            if shown > best_height and self._benched.get(peer, (0.0, 0.0))[0] <= now:
                best, best_height = peer, shown
        return best

    def synced(self, peer: str, started: int, reached: int, now: float) -> None:
        """A sync from `peer` took our height from `started` to `reached`. Any progress clears the peer (if it
        has shown more meanwhile, `source` names it again). None although it had shown more: bench it for a while
        (doubling while it keeps failing) and forget the claim, so only a new message brings it back."""
        if reached > started or reached >= self._shown.get(peer, -1):
            self._benched.pop(peer, None)
            return
        pause = min(self._benched.get(peer, (0.0, self.retry_after_s / 2))[1] * 2, self.retry_max_s)
        self._benched[peer] = (now + pause, pause)
        self._shown[peer] = reached

    def probe(self, stalled_s: float, connected: Collection[str], now: float) -> str | None:
        """The fallback: the one peer whose status to ask now, or None. Only after `stalled_s` without a final
        block reaches `fallback_after_s`, at most every `fallback_every_s`, each connected peer in turn."""
        if stalled_s < self.fallback_after_s or now - self._last_probe < self.fallback_every_s or not connected:
            return None
        self._last_probe = now
        peers = sorted(connected)
        self._probe_turn = (self._probe_turn + 1) % len(peers)
        return peers[self._probe_turn]

    def keep_only(self, connected: Collection[str]) -> None:
        """Forget peers no longer connected (what they showed is stale by the time they are back)."""
        for peer in [p for p in self._shown if p not in connected]:
            del self._shown[peer]
        for peer in [p for p in self._benched if p not in connected]:
            del self._benched[peer]
