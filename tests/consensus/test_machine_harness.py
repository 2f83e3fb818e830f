"""A deterministic network simulator for ConsensusMachine, plus the fakes the machine tests share.

The simulator models the partial-synchrony setting of the paper (Buchman, Kwon, Milosevic 2018, §2): before the
global stabilisation time (GST) messages may be delayed arbitrarily or lost; after it every message arrives
within `max_delay`. Like a real shell it re-gossips each node's messages periodically, answers `RequestValue`
from peers that hold the value and hands a lagging peer the commit of a height it has not decided (the role
block sync plays in the node). Everything is driven by one seeded RNG and a simulated clock.

Re-gossip sends a peer only what it does not hold yet, as Tendermint's gossip does by tracking each peer's round
state: resending everything every interval would cost O(rounds · n³) per interval, and a run that does not
decide would drown in duplicates. A run stops at `max_messages` sent (`budget_exhausted` tells), so a test that
finds a stuck schedule fails in seconds instead of running into the test timeout.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    Commit,
    RecordEvidence,
    RequestValue,
    ScheduleTimeout,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.machine import ConsensusMachine
from consensus.messages import MessageError
from consensus.proposal import Proposal
from consensus.timeouts import Timeout, TimeoutParams
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives.keys import SigningKey

CHAIN = "ehrnet-test"
FAST = TimeoutParams(
    propose=1.0, propose_delta=0.5, prevote=0.5, prevote_delta=0.25, precommit=0.5, precommit_delta=0.25
)


def make_keys(n: int, salt: int = 0) -> list[SigningKey]:
    return [SigningKey(hashlib.sha256(f"validator-{salt}-{i}".encode()).digest()) for i in range(n)]


def validator_set(keys: list[SigningKey]) -> ValidatorSet:
    return ValidatorSet(tuple(k.public_key for k in keys))


class FakeApp:
    """Values are b"block|<height>|<round>|<author>"; anything starting with b"bad" or for another height is
    invalid. Counts validate calls so tests can check the cache."""

    def __init__(self, author: str = "x") -> None:
        self.author = author
        self.validations = 0

    def value_hash(self, value: bytes) -> bytes:
        return hashlib.sha256(value).digest()

    def propose(self, height: int, round_: int, now: float) -> bytes:
        return f"block|{height}|{round_}|{self.author}".encode()

    def validate(self, height: int, value: bytes) -> bool:
        self.validations += 1
        parts = value.split(b"|")
        return not value.startswith(b"bad") and len(parts) > 1 and parts[1] == str(height).encode()


def value_of(text: str) -> tuple[bytes, bytes]:
    value = text.encode()
    return value, hashlib.sha256(value).digest()


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    target: int = field(compare=False)
    kind: str = field(compare=False)
    payload: object = field(compare=False)


@dataclass
class NodeLog:
    commits: dict[int, Commit] = field(default_factory=dict)
    evidence: list[DuplicateVoteEvidence] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Network:
    """N machines, some crashed (silent) and some Byzantine (equivocating), exchanging messages in seeded order."""

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        crashed: frozenset[int] = frozenset(),
        byzantine: frozenset[int] = frozenset(),
        drop_rate: float = 0.0,
        lose_forever: bool = False,
        gst: float = 0.0,
        max_delay: float = 0.05,
        pre_gst_delay: float = 2.0,
        heights: int = 1,
        gossip_interval: float = 1.0,
        partition_period: float = 0.0,
        partition_drop: float = 0.9,
        params: TimeoutParams = FAST,
        first_height: int = 1,
        max_messages: int = 50_000,
    ) -> None:
        self.rng = random.Random(seed)
        self.keys = make_keys(n, salt=seed)
        self.validators = validator_set(self.keys)
        self.crashed, self.byzantine = crashed, byzantine
        self.drop_rate, self.lose_forever, self.gst = drop_rate, lose_forever, gst
        self.max_delay, self.pre_gst_delay = max_delay, pre_gst_delay
        self.last_height = first_height + heights - 1
        self.gossip_interval = gossip_interval
        self.partition_period, self.partition_drop = partition_period, partition_drop
        self._epoch = -1
        self._side = [0] * n
        self._echoed: set[tuple[int, int, bytes]] = set()
        self.proposed: dict[int, list[bytes]] = {}  # value hashes proposed per height, for Byzantine votes
        self.now = 0.0
        self._queue: list[_Event] = []
        self._seq = 0
        self.logs = [NodeLog() for _ in range(n)]
        self.messages_sent = 0
        self.max_messages = max_messages
        self.budget_exhausted = False
        self.machines = [
            ConsensusMachine(
                chain_id=CHAIN,
                app=FakeApp(f"n{i}"),
                height=first_height,
                validators=self.validators,
                key=self.keys[i],
                params=params,
            )
            for i in range(n)
        ]

    @property
    def honest(self) -> list[int]:
        return [i for i in range(len(self.machines)) if i not in self.crashed and i not in self.byzantine]

    # ---- scheduling -------------------------------------------------------------------------------------------

    def _push(self, at: float, target: int, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Event(at, self._seq, target, kind, payload))

    def _sides(self) -> list[int]:
        """Before GST, which side of the current partition each node is on (re-drawn every period)."""
        epoch = int(self.now / self.partition_period) if self.partition_period > 0 else 0
        if epoch != self._epoch:
            self._epoch = epoch
            self._side = [self.rng.randint(0, 1) for _ in self.machines]
        return self._side

    def _send(self, source: int, target: int, message: Proposal | Vote, value: bytes | None) -> None:
        self.messages_sent += 1
        if self.now < self.gst:
            sides = self._sides()
            cut = sides[source] != sides[target] and source not in self.byzantine and self.partition_period > 0
            if self.rng.random() < (self.partition_drop if cut else self.drop_rate):
                if self.lose_forever:
                    return
                # Partial synchrony: a message sent before GST arrives by GST + Δ.
                self._push(self.gst + self.rng.uniform(0, self.max_delay), target, "msg", (message, value))
                return
            delay = self.rng.uniform(0, self.pre_gst_delay)
        else:
            delay = self.rng.uniform(0.001, self.max_delay)
        self._push(self.now + delay, target, "msg", (message, value))

    def _broadcast(self, source: int, message: Proposal | Vote, value: bytes | None) -> None:
        if isinstance(message, Proposal):
            self.proposed.setdefault(message.height, []).append(message.value_hash)
        for target in range(len(self.machines)):
            if target != source:
                self._send(source, target, message, value)

    # ---- Byzantine behaviour ----------------------------------------------------------------------------------

    def _conflicting(self, source: int, message: Proposal | Vote) -> tuple[Proposal | Vote, bytes | None]:
        """A signed message for the same slot as `message` but another value: a rival block for a proposal,
        and for a vote another value proposed at this height (or nil), so it can help a rival quorum form."""
        key = self.keys[source]
        if isinstance(message, Proposal):
            value = f"block|{message.height}|{message.round}|evil{source}".encode()
            value_hash = hashlib.sha256(value).digest()
            self.proposed.setdefault(message.height, []).append(value_hash)
            rival = Proposal(message.chain_id, message.height, message.round, -1, value_hash, message.proposer)
            return rival.signed(key), value
        choices: list[bytes | None] = [h for h in self.proposed.get(message.height, []) if h != message.block_hash]
        if message.block_hash is not None:
            choices.append(None)
        block_hash = self.rng.choice(choices) if choices else hashlib.sha256(b"evil%d" % self._seq).digest()
        vote = Vote(message.kind, message.chain_id, message.height, message.round, block_hash, message.validator)
        return vote.signed(key), None

    def _equivocate(self, source: int, message: Proposal | Vote, value: bytes | None) -> None:
        """Send the honest message to one side of the partition and a conflicting signed one to the other."""
        if isinstance(message, Proposal):
            self.proposed.setdefault(message.height, []).append(message.value_hash)
        other, other_value = self._conflicting(source, message)
        sides = self._sides() if self.partition_period > 0 else [self.rng.randint(0, 1) for _ in self.machines]
        for target in range(len(self.machines)):
            if target == source:
                continue
            first, second = ((message, value), (other, other_value))[:: 1 if sides[target] == 0 else -1]
            self._send(source, target, *first)
            if self.rng.random() < 0.2:  # sometimes both, so that honest nodes hold the proof
                self._send(source, target, *second)

    def _echo(self, source: int, proposal: Proposal) -> None:
        """A Byzantine validator backs every proposal it sees with a prevote and a precommit, whatever it signed
        before: the most it can add to a rival quorum, which is what the locking rules must withstand."""
        slot = (proposal.height, proposal.round, proposal.value_hash)
        if slot in self._echoed:
            return
        self._echoed.add(slot)
        key = self.keys[source]
        for kind in VoteKind:
            vote = Vote(kind, CHAIN, proposal.height, proposal.round, proposal.value_hash, key.public_key).signed(key)
            self._broadcast(source, vote, None)

    # ---- handling actions -------------------------------------------------------------------------------------

    def _handle(self, node: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, BroadcastProposal | BroadcastVote):
                message = action.proposal if isinstance(action, BroadcastProposal) else action.vote
                value = action.value if isinstance(action, BroadcastProposal) else None
                if node in self.byzantine:
                    self._equivocate(node, message, value)
                else:
                    self._broadcast(node, message, value)
            elif isinstance(action, ScheduleTimeout):
                self._push(action.at, node, "timeout", action.timeout)
            elif isinstance(action, Commit):
                self.logs[node].commits[action.height] = action
                if action.height < self.last_height:
                    self._push(self.now + 0.01, node, "next", action.height + 1)
            elif isinstance(action, RecordEvidence):
                self.logs[node].evidence.append(action.evidence)
            elif isinstance(action, RequestValue):
                self._push(self.now + self.max_delay, node, "fetch", action)

    def _fetch(self, node: int, request: RequestValue) -> None:
        found = self._find_value(node, request)
        if found is None:  # nobody has it yet: ask again later
            self._push(self.now + self.gossip_interval, node, "fetch", request)
            return
        now = self.now
        self._call(node, lambda m: m.on_value(request.value_hash, found, now))

    def _find_value(self, node: int, request: RequestValue) -> bytes | None:
        for peer in self.rng.sample(range(len(self.machines)), len(self.machines)):
            if peer == node or peer in self.crashed:
                continue
            machine = self.machines[peer]
            found = machine.value(request.value_hash) if machine.height == request.height else None
            commit = self.logs[peer].commits.get(request.height)
            if found is None and commit is not None and commit.value_hash == request.value_hash:
                found = commit.value
            if found is not None:
                return found
        return None

    def _gossip(self, node: int) -> None:
        """Re-send what this node holds to peers, and a decided height's commit to peers still at that height."""
        if node not in self.byzantine:
            machine = self.machines[node]
            for target in range(len(self.machines)):
                if target == node or target in self.crashed:
                    continue
                peer = self.machines[target]
                # What the peer already holds at its height (a real shell learns this from the peer's round state).
                peer_has = {v.signature for v in peer.votes()}
                if peer.height == machine.height:
                    held = machine.proposal(machine.round)
                    if held is not None and peer.proposal(machine.round) != (held[0], held[1]):
                        self._send(node, target, held[0], held[1])
                    for vote in machine.votes():
                        if vote.signature not in peer_has:
                            self._send(node, target, vote, None)
                elif (commit := self.logs[node].commits.get(peer.height)) is not None:
                    for vote in commit.precommits:
                        if vote.signature not in peer_has:
                            self._send(node, target, vote, None)
        self._push(self.now + self.gossip_interval, node, "gossip", None)

    def _call(self, node: int, step: Callable[[ConsensusMachine], list[Action]]) -> None:
        try:
            actions = step(self.machines[node])
        except MessageError as exc:
            self.logs[node].errors.append(str(exc))
            return
        self._handle(node, actions)

    # ---- running ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        for node in range(len(self.machines)):
            if node not in self.crashed:
                self._call(node, lambda m: m.on_start(self.now))
                self._push(self.now + self.gossip_interval * self.rng.random(), node, "gossip", None)

    def run(self, until: float) -> None:
        """Process events until simulated time `until`, until every honest node decided the last height, or until
        `max_messages` were sent (then `budget_exhausted` is set)."""
        self.start()
        while self._queue and not self.all_decided():
            if self.messages_sent >= self.max_messages:
                self.budget_exhausted = True
                break
            event = heapq.heappop(self._queue)
            if event.at > until:
                break
            self.now = event.at
            node = event.target
            if node in self.crashed:
                continue
            self._dispatch(node, event.payload)

    def _dispatch(self, node: int, payload: object) -> None:
        now = self.now
        if isinstance(payload, tuple):
            message, value = payload
            if node in self.byzantine and isinstance(message, Proposal):
                self._echo(node, message)
            if isinstance(message, Proposal):
                self._call(node, lambda m: m.on_proposal(message, value, now))
            else:
                self._call(node, lambda m: m.on_vote(message, now))
        elif isinstance(payload, Timeout):
            self._call(node, lambda m: m.on_timeout(payload, now))
        elif isinstance(payload, int):
            if self.machines[node].height < payload:
                self._call(node, lambda m: m.start_height(payload, self.validators, now))
        elif isinstance(payload, RequestValue):
            self._fetch(node, payload)
        else:
            self._gossip(node)

    def all_decided(self) -> bool:
        return all(self.last_height in self.logs[i].commits for i in self.honest)

    def decided_values(self) -> dict[int, set[bytes]]:
        """Per height, the set of distinct value hashes honest nodes committed (agreement: one per height)."""
        found: dict[int, set[bytes]] = {}
        for i in self.honest:
            for height, commit in self.logs[i].commits.items():
                found.setdefault(height, set()).add(commit.value_hash)
        return found


def test_simulation_is_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        net = Network(4, seed=7, drop_rate=0.2, gst=3.0, heights=2)
        net.run(until=60.0)
        runs.append((net.messages_sent, {h: sorted(v) for h, v in net.decided_values().items()}))
    assert runs[0] == runs[1]
    assert runs[0][1], "the run decided something"
