"""Gated gossip topics for the libp2p bridge: who may use a topic, the validator run on its messages, and the
penalties for invalid ones (docs/PROTOCOL.md §2, "Membership" and "Validation and scoring").

Part of the libp2p bridge (it is handed py-libp2p message objects; nothing outside `node/p2p/` is).

py-libp2p 0.8.1 runs topic validators in `Pubsub.push_msg`, after the message's signature is checked and before
it is delivered to our subscription or handed to `router.publish` to be forwarded; a synchronous validator is
called inline (asynchronous ones run under a timeout and a semaphore, and need not be: judging a message costs
microseconds to a few signature checks). A rejected message is dropped and its verdict cached by message ID for
300 s, so a repeat costs nothing and is not counted twice. The library's own scorer is told of the rejection but
never acts on it (its thresholds are −∞); this module penalises the *forwarding* peer in our own scorer
(node/p2p/peer_score.py), and the host bans a peer whose score crosses the threshold.

Penalised: a message forwarded by a peer the topic's guard does not admit (a non-member), and one the guard's
judge rejects. Dropped without a penalty: a message a member relays from an originator we do not admit (the
member's view of the member list may be newer than ours), and whatever the judge IGNOREs (a message an honest
member could have sent). Our own publishes are not judged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from libp2p.peer.id import ID

from node.p2p.peer_score import PeerScorer
from node.p2p.types import GossipMessage, TopicGuard, Verdict

log = logging.getLogger(__name__)

MAX_TRACKED_PEERS = 1024


class GossipGuards:
    """The guards of one host's topics, their verdict counters, and the scorer behind its bans."""

    def __init__(
        self,
        own_peer_id: str,
        scorer: PeerScorer,
        ban: Callable[[str, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own = own_peer_id
        self._guards: dict[str, TopicGuard] = {}
        self.scorer = scorer
        self._ban = ban
        self._clock = clock
        self.verdicts: dict[str, int] = {v.value: 0 for v in Verdict}
        self.rejected_from: dict[str, int] = {}  # forwarding peer → messages from it rejected here
        # Per guarded topic: copies peers sent us (repeats included), and messages judged (the first copy of each).
        self.received: dict[str, int] = {}
        self.judged: dict[str, int] = {}

    def add(self, topic: str, guard: TopicGuard) -> None:
        self._guards[topic] = guard
        self.received.setdefault(topic, 0)
        self.judged.setdefault(topic, 0)

    def single_hop(self, topic: str) -> bool:
        guard = self._guards.get(topic)
        return guard is not None and guard.single_hop

    def count_received(self, topics: Any) -> None:
        for topic in topics:
            if topic in self.received:
                self.received[topic] += 1

    def topics(self) -> list[str]:
        return list(self._guards)

    def admits(self, peer_id: str, topic: str) -> bool:
        guard = self._guards.get(topic)
        if guard is None or peer_id == self._own:
            return True
        try:
            return guard.admits(peer_id)
        except Exception:
            log.exception("topic guard of %s failed on %s", topic, peer_id)
            return False

    def validator(self, topic: str) -> Callable[[ID, Any], bool]:
        """The synchronous validator py-libp2p calls as `validator(forwarder, message)` for `topic`."""

        def validate(forwarder_id: ID, msg: Any) -> bool:
            return self.judge(topic, str(forwarder_id), msg) is Verdict.ACCEPT

        return validate

    def judge(self, topic: str, forwarder: str, msg: Any) -> Verdict:
        guard = self._guards[topic]
        if forwarder == self._own:
            return Verdict.ACCEPT  # our own publish
        try:
            origin = str(ID(msg.from_id))
            if not self.admits(forwarder, topic):
                verdict, why = Verdict.REJECT, "not a member"
            elif not self.admits(origin, topic):
                # A member relaying a peer we do not know as a member: its view may be newer than ours (an
                # add_member we have not synced yet), so the message is dropped but nobody is penalised.
                verdict, why = Verdict.IGNORE, "originated by a non-member"
            else:
                verdict, why = guard.judge(GossipMessage(topic, bytes(msg.data), origin)), "invalid"
        except Exception as exc:  # a judge must never let a peer's message end the host
            verdict, why = Verdict.REJECT, f"{type(exc).__name__}: {exc}"
        self.verdicts[verdict.value] += 1
        self.judged[topic] += 1
        if verdict is Verdict.REJECT:
            self._penalise(forwarder, topic, why)
        else:
            log.debug("ignored a message on %s forwarded by %s: %s", topic, forwarder, why)
        return verdict

    def _penalise(self, peer: str, topic: str, why: str) -> None:
        if len(self.rejected_from) < MAX_TRACKED_PEERS or peer in self.rejected_from:
            self.rejected_from[peer] = self.rejected_from.get(peer, 0) + 1
        log.debug("rejected a message on %s forwarded by %s: %s", topic, peer, why)
        now = self._clock()
        until = self.scorer.penalise(peer, now)
        if until is not None:
            log.warning("banned peer %s for %.0f s: invalid gossip on %s (%s)", peer, until - now, topic, why)
            self._ban(peer, until)

    def status(self, banned: dict[str, float]) -> dict[str, object]:
        now = self._clock()
        self.scorer.forget_idle(now)
        worst = sorted(self.rejected_from.items(), key=lambda item: -item[1])[:16]
        return {
            "verdicts": dict(self.verdicts),
            "rejected_from": dict(worst),
            "banned": {peer: round(until - now, 1) for peer, until in banned.items()},
            "messages": {topic: {"received": n, "judged": self.judged[topic]} for topic, n in self.received.items()},
        }
