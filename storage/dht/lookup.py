"""The iterative lookup (Kademlia §2.3) as a state machine driven by responses, failures and a clock.

The caller asks `next_queries(now)` for peers to send FIND_NODE / GET_PROVIDERS to (never more than α in
flight), feeds back `on_response` / `on_failure`, and calls `expire(now)` to turn overdue queries into failures.
Termination follows go-libp2p-kad-dht's `runLookupWithFollowup`: the search phase ends when the β closest peers
it has heard of (failed ones excluded) have all answered; a follow-up phase then queries, all at once, any of
the k closest not yet asked, so `closest()` holds k peers that answered (where ADD_PROVIDER must go). The lookup
is done when the k closest non-failed peers have all answered, or when nobody is left to ask. A provider lookup
also stops as soon as it holds `want_providers` distinct providers. Providers are de-duplicated by peer ID (py-libp2p's
kad-dht was measured returning duplicates).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.dht.keyspace import Contact

ALPHA = 3
BETA = 3
K = 20
# Seconds before a query to one peer counts as failed; the node's request timeout too (node/store/dht.py),
# so a lookup and the stream under it give up together. A live peer on a LAN answers in milliseconds.
QUERY_TIMEOUT = 5.0


class PeerState(enum.Enum):
    HEARD = "heard"
    WAITING = "waiting"
    ANSWERED = "answered"
    FAILED = "failed"


class LookupKind(enum.Enum):
    FIND_NODE = "find_node"
    GET_PROVIDERS = "get_providers"


@dataclass(slots=True)
class _Candidate:
    contact: Contact
    state: PeerState
    sent_at: float = 0.0


class Lookup:
    def __init__(
        self,
        target: int,
        seeds: Iterable[Contact],
        *,
        kind: LookupKind = LookupKind.FIND_NODE,
        local_id: bytes = b"",
        alpha: int = ALPHA,
        beta: int = BETA,
        k: int = K,
        timeout: float = QUERY_TIMEOUT,
        want_providers: int = K,
    ) -> None:
        self.target = target
        self.kind = kind
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.timeout = timeout
        self.want_providers = want_providers
        self._local_id = local_id
        self._candidates: dict[bytes, _Candidate] = {}
        self._order: list[tuple[int, bytes]] = []  # (distance, peer_id), nearest first
        self._in_flight = 0
        self._providers: dict[bytes, Contact] = {}
        self.queries_sent = 0
        self.failures = 0
        self._add(seeds)

    def _add(self, contacts: Iterable[Contact]) -> None:
        for contact in contacts:
            if contact.peer_id == self._local_id or contact.peer_id in self._candidates:
                continue
            self._candidates[contact.peer_id] = _Candidate(contact, PeerState.HEARD)
            bisect.insort(self._order, (contact.key ^ self.target, contact.peer_id))

    @property
    def providers(self) -> list[Contact]:
        return list(self._providers.values())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _nearest_live(self, count: int) -> list[_Candidate]:
        nearest: list[_Candidate] = []
        for _, peer_id in self._order:
            candidate = self._candidates[peer_id]
            if candidate.state is not PeerState.FAILED:
                nearest.append(candidate)
                if len(nearest) == count:
                    break
        return nearest

    def _all_answered(self, count: int) -> bool:
        return all(c.state is PeerState.ANSWERED for c in self._nearest_live(count))

    @property
    def finished(self) -> bool:
        if self.kind is LookupKind.GET_PROVIDERS and len(self._providers) >= self.want_providers:
            return True
        if self._in_flight == 0 and not any(c.state is PeerState.HEARD for c in self._nearest_live(self.k)):
            return True  # nobody left worth asking
        return self._all_answered(self.k)

    def next_queries(self, now: float) -> list[Contact]:
        """Peers to query now, nearest unqueried first; they are marked as waiting."""
        if self.finished:
            return []
        if self._all_answered(self.beta):
            # Follow-up phase: ask every unasked peer among the k closest at once.
            chosen = [c for c in self._nearest_live(self.k) if c.state is PeerState.HEARD]
        else:
            chosen = []
            for _, peer_id in self._order:
                if self._in_flight + len(chosen) >= self.alpha:
                    break
                candidate = self._candidates[peer_id]
                if candidate.state is PeerState.HEARD:
                    chosen.append(candidate)
        for candidate in chosen:
            candidate.state = PeerState.WAITING
            candidate.sent_at = now
            self._in_flight += 1
            self.queries_sent += 1
        return [candidate.contact for candidate in chosen]

    def on_response(
        self, peer_id: bytes, closer: Sequence[Contact], providers: Sequence[Contact] = (), now: float = 0.0
    ) -> None:
        """A queried peer answered with peers closer to the target (and, for provider lookups, providers)."""
        candidate = self._candidates.get(peer_id)
        if candidate is None or candidate.state is not PeerState.WAITING:
            return  # unsolicited or late: ignore rather than let a peer steer the lookup
        candidate.state = PeerState.ANSWERED
        self._in_flight -= 1
        self._add(closer[: self.k])
        for provider in providers:
            self._providers.setdefault(provider.peer_id, provider)

    def on_failure(self, peer_id: bytes, now: float = 0.0) -> None:
        candidate = self._candidates.get(peer_id)
        if candidate is None or candidate.state is not PeerState.WAITING:
            return
        candidate.state = PeerState.FAILED
        self._in_flight -= 1
        self.failures += 1

    def expire(self, now: float) -> list[Contact]:
        """Fail every query older than the timeout; returns those peers (the caller may drop them)."""
        overdue = [
            c for c in self._candidates.values() if c.state is PeerState.WAITING and now - c.sent_at >= self.timeout
        ]
        for candidate in overdue:
            self.on_failure(candidate.contact.peer_id, now)
        return [candidate.contact for candidate in overdue]

    def closest(self, count: int | None = None) -> list[Contact]:
        """The nearest peers that answered, nearest first (where ADD_PROVIDER records should go)."""
        limit = self.k if count is None else count
        answered = [
            self._candidates[peer_id].contact
            for _, peer_id in self._order
            if self._candidates[peer_id].state is PeerState.ANSWERED
        ]
        return answered[:limit]
