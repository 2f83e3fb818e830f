"""Two of four validators crash at their precommit and come back: the lock split, played deterministically.

Height 1, validators 0–3; validator 1 proposes block B in round 0 and all four prevote it. Validators 2 and 3 die
as they are about to precommit (their prevotes went out, no precommit of theirs exists), so 0 and 1 precommit B
alone: locked on B (Buchman, Kwon, Milosevic 2018, Algorithm 1, line 36) and short of a quorum. The two come back
with fresh machines that hold only their own persisted prevotes, and without B's transactions: B's proposal
reaches them without its value, and their first fetch of it fails (their peers are not reachable yet — after a
restart the node has not finished its handshakes). From then on 0 and 1 prevote nil on every fresh value and
re-propose B, while 2 and 3 cannot prevote B without it: a 2–2 split in every round, which is what a real
4-node cluster showed.

The simulated shell answers each `RequestValue` with one attempt, as the node used to: what the test checks is
that the machine asks again in a later round that still needs the value, and that a re-proposal carries the
prevotes that justify it, so the chain decides B within a few rounds.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from functools import partial

from consensus.actions import Action, BroadcastProposal, BroadcastVote, Commit, RequestValue, ScheduleTimeout
from consensus.machine import ConsensusMachine
from consensus.proposal import Proposal
from consensus.votes import Vote, VoteKind
from tests.consensus.test_machine_harness import CHAIN, FAST, FakeApp, make_keys, validator_set, value_of

KEYS = make_keys(4, salt=7)
VALIDATORS = validator_set(KEYS)
SURVIVORS, CRASHERS = (0, 1), (2, 3)
DELAY = 0.01  # message delivery
GOSSIP_INTERVAL = 1.0  # the shell re-sends a node's own messages this often (docs/CONSENSUS.md §6)
CONNECT_DELAY = 0.5  # after a restart, peers answer requests only from this long on


class Cluster:
    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.machines: dict[int, ConsensusMachine] = {}
        self.alive: set[int] = set()
        self.reachable_from: dict[int, float] = {}
        self.persisted: dict[int, list[Vote]] = {i: [] for i in range(4)}  # each node's sign guard
        self.own_proposals: dict[int, list[tuple[Proposal, bytes, tuple[Vote, ...]]]] = {i: [] for i in range(4)}
        self.lacking: set[bytes] = set()  # values the restarted nodes cannot rebuild from their mempool
        self.crash_at_precommit: set[int] = set()
        self.commits: dict[int, Commit] = {}
        self.failed_fetches = 0

    # ---- nodes ----

    def start(self, *nodes: int) -> None:
        """(Re)start `nodes` with fresh machines; all are up before any of them acts."""
        for node in nodes:
            self.machines[node] = ConsensusMachine(
                chain_id=CHAIN, app=FakeApp(f"n{node}"), height=1, validators=VALIDATORS, key=KEYS[node], params=FAST
            )
            self.alive.add(node)
            self.reachable_from[node] = self.now + CONNECT_DELAY
        for node in nodes:
            machine = self.machines[node]
            for vote in self.persisted[node]:  # replayed before on_start, as the node does
                self.handle(node, machine.on_vote(vote, self.now, verified=True))
            self.handle(node, machine.on_start(self.now))

    def handle(self, node: int, actions: list[Action]) -> None:
        for action in actions:
            if node not in self.alive:
                return
            if isinstance(action, BroadcastVote):
                vote = action.vote
                if node in self.crash_at_precommit and vote.kind is VoteKind.PRECOMMIT and vote.block_hash:
                    self.alive.discard(node)  # crash-before-precommit: never persisted, never sent
                    return
                if vote not in self.persisted[node]:
                    self.persisted[node].append(vote)
                self.broadcast(node, [(None, vote)])
            elif isinstance(action, BroadcastProposal):
                pol: tuple[Vote, ...] = getattr(action, "proof_of_lock", ())  # (absent before re-proposals carried it)
                self.own_proposals[node].append((action.proposal, action.value, pol))
                self.broadcast(node, [(action.proposal, action.value), *((None, v) for v in pol)])
            elif isinstance(action, ScheduleTimeout):
                machine = self.machines[node]
                timeout = action.timeout
                self.at(action.at, partial(self.feed, node, machine, partial(machine.on_timeout, timeout)))
            elif isinstance(action, RequestValue):
                self.at(self.now + DELAY, partial(self.fetch_once, node, action.value_hash))
            elif isinstance(action, Commit):
                self.commits[node] = action

    def feed(self, node: int, machine: ConsensusMachine, step: Callable[[float], list[Action]]) -> None:
        """Hand `machine` an input, unless its node has crashed or restarted (a new machine) since."""
        if node in self.alive and self.machines[node] is machine:
            self.handle(node, step(self.now))

    # ---- the simulated shell ----

    def broadcast(self, sender: int, items: list[tuple[Proposal | None, bytes | Vote | None]]) -> None:
        for target in sorted(self.alive - {sender}):
            machine = self.machines[target]
            for proposal, payload in items:
                if proposal is not None:
                    value = payload if isinstance(payload, bytes) else None
                    if target in CRASHERS and value is not None and FakeApp().value_hash(value) in self.lacking:
                        value = None  # the compact block cannot be rebuilt from a fresh mempool
                    self.at(
                        self.now + DELAY,
                        partial(self.feed, target, machine, partial(machine.on_proposal, proposal, value)),
                    )
                elif isinstance(payload, Vote):
                    self.at(self.now + DELAY, partial(self.feed, target, machine, partial(machine.on_vote, payload)))

    def regossip(self) -> None:
        """Every node re-sends its own votes and proposals of the height (gossip is best-effort)."""
        for node in sorted(self.alive):
            own = [v for v in self.machines[node].votes() if v.validator == KEYS[node].public_key]
            items: list[tuple[Proposal | None, bytes | Vote | None]] = [(None, v) for v in own]
            for proposal, value, pol in self.own_proposals[node]:
                items += [(proposal, value), *((None, v) for v in pol)]
            self.broadcast(node, items)
        self.at(self.now + GOSSIP_INTERVAL, self.regossip)

    def fetch_once(self, node: int, value_hash: bytes) -> None:
        """One attempt, like a single pass over the peers: fails while none is reachable."""
        if node not in self.alive:
            return
        holders = [p for p in sorted(self.alive - {node}) if self.machines[p].value(value_hash) is not None]
        if self.now < self.reachable_from[node] or not holders:
            self.failed_fetches += 1
            return
        value = self.machines[holders[0]].value(value_hash)
        assert value is not None
        machine = self.machines[node]
        self.at(self.now + DELAY, partial(self.feed, node, machine, partial(machine.on_value, value_hash, value)))

    # ---- the clock ----

    def at(self, when: float, event: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), event))

    def run_until(self, end: float, stop: Callable[[], bool] = lambda: False) -> None:
        while self._events and self._events[0][0] <= end and not stop():
            self.now, _, event = heapq.heappop(self._events)
            event()
        self.now = max(self.now, end) if not stop() else self.now


def crash_two_at_their_precommit() -> tuple[Cluster, bytes]:
    net = Cluster()
    net.crash_at_precommit = set(CRASHERS)
    net.start(0, 1, 2, 3)
    net.run_until(5.0)
    assert net.alive == set(SURVIVORS), "both crashers died at their precommit"
    block = next(p for p, _, _ in net.own_proposals[1] if p.round == 0).value_hash
    for node in SURVIVORS:
        machine = net.machines[node]
        assert (machine.locked_value, machine.locked_round) == (block, 0)
    assert not net.commits, "two precommits are not a quorum"
    return net, block


def test_restarted_validators_obtain_the_locked_block_and_the_chain_decides_it() -> None:
    net, block = crash_two_at_their_precommit()
    # They come back without B's transactions, and without the fault armed. Re-gossip starts with them.
    net.lacking.add(block)
    net.crash_at_precommit.clear()
    net.start(*CRASHERS)
    net.regossip()
    net.run_until(60.0, stop=lambda: len(net.commits) == 4)

    assert net.failed_fetches >= 1, "the first fetch after the restart is meant to fail"
    assert len(net.commits) == 4, f"no decision by t={net.now:.1f} s (a 2–2 split every round)"
    assert {c.value_hash for c in net.commits.values()} == {block}  # the locked block, nothing else
    assert max(c.round for c in net.commits.values()) <= 8
    assert net.now < 20.0


def test_a_reproposal_carries_the_prevotes_that_let_a_node_which_missed_the_lock_round_accept_it() -> None:
    net, block = crash_two_at_their_precommit()
    # Move the survivors to round 3 (proposer: validator 0) as the rounds after the restart would.
    survivor = net.machines[0]
    actions: list[Action] = []
    for round_ in (1, 2):
        for node in (2, 3):
            for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
                nil = Vote(kind, CHAIN, 1, round_, None, KEYS[node].public_key).signed(KEYS[node])
                actions += survivor.on_vote(nil, net.now)
    skip = [Vote(VoteKind.PREVOTE, CHAIN, 1, 3, None, KEYS[n].public_key).signed(KEYS[n]) for n in (2, 3)]
    for vote in skip:
        actions += survivor.on_vote(vote, net.now)
    [reproposal] = [a for a in actions if isinstance(a, BroadcastProposal) and a.proposal.round == 3]
    assert (reproposal.proposal.value_hash, reproposal.proposal.pol_round) == (block, 0)
    pol = reproposal.proof_of_lock
    assert len({v.validator for v in pol}) >= VALIDATORS.quorum
    assert all(v.kind is VoteKind.PREVOTE and v.round == 0 and v.block_hash == block for v in pol)

    # A validator that saw nothing of round 0 (a wiped node) accepts it from the re-proposal alone.
    fresh = ConsensusMachine(
        chain_id=CHAIN, app=FakeApp("fresh"), height=1, validators=VALIDATORS, key=KEYS[3], params=FAST
    )
    fresh.on_start(net.now)
    fresh.on_vote(skip[0], net.now)  # with the re-proposal: two validators in round 3, so it follows them there
    out = fresh.on_proposal(reproposal.proposal, reproposal.value, net.now)
    assert fresh.round == 3 and not [a for a in out if isinstance(a, BroadcastVote)]  # waits for the proof
    for vote in pol:
        out += fresh.on_vote(vote, net.now)
    prevotes = [a.vote for a in out if isinstance(a, BroadcastVote) and a.vote.kind is VoteKind.PREVOTE]
    assert [(v.round, v.block_hash) for v in prevotes] == [(3, block)]


def test_a_restarted_validator_keeps_the_lock_its_persisted_precommit_stands_for() -> None:
    # Validator 0 precommitted v in round 0 and crashed; its sign guard replays that precommit into a fresh
    # machine. A fresh value v' proposed in round 1 (no proof of lock) must get its nil prevote, as before the
    # crash: were it unlocked, it would join a quorum for v' while v may already be final at a peer.
    _, v_hash = value_of("block|1|0|n1")
    v2, v2_hash = value_of("block|1|1|n2")
    me = KEYS[0]
    restarted = ConsensusMachine(
        chain_id=CHAIN, app=FakeApp("n0"), height=1, validators=VALIDATORS, key=me, params=FAST
    )
    replayed: list[Action] = []
    for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
        replayed += restarted.on_vote(Vote(kind, CHAIN, 1, 0, v_hash, me.public_key).signed(me), 0.0, verified=True)
    restarted.on_start(0.0)
    assert (restarted.locked_value, restarted.locked_round) == (v_hash, 0)
    assert RequestValue(1, v_hash) in replayed  # the locked block is wanted at once (from disk, or peers)

    other = KEYS[3]
    restarted.on_vote(Vote(VoteKind.PREVOTE, CHAIN, 1, 1, None, other.public_key).signed(other), 1.0)
    proposer = KEYS[VALIDATORS.members.index(VALIDATORS.proposer(1, 1))]
    fresh = Proposal(CHAIN, 1, 1, -1, v2_hash, proposer.public_key).signed(proposer)
    out = restarted.on_proposal(fresh, v2, 1.0)
    assert restarted.round == 1
    prevotes = [a.vote for a in out if isinstance(a, BroadcastVote) and a.vote.kind is VoteKind.PREVOTE]
    assert [(p.round, p.block_hash) for p in prevotes] == [(1, None)]


def test_a_restored_lock_whose_block_is_back_is_reproposed_with_its_round() -> None:
    # The node keeps the block of its precommit on disk (node/ledger/locked_value.py) and hands it back after the
    # restart: as proposer it re-proposes that block with pol_round 0, as it would have without the crash — so a
    # cluster whose every node restarted does not sit forever locked on a block nobody can propose.
    v, v_hash = value_of("block|1|0|n1")
    me = KEYS[0]
    restarted = ConsensusMachine(
        chain_id=CHAIN, app=FakeApp("n0"), height=1, validators=VALIDATORS, key=me, params=FAST
    )
    restarted.on_vote(Vote(VoteKind.PRECOMMIT, CHAIN, 1, 0, v_hash, me.public_key).signed(me), 0.0, verified=True)
    restarted.on_value(v_hash, v, 0.0)
    restarted.on_start(0.0)
    round_ = next(r for r in range(1, 8) if VALIDATORS.proposer(1, r) == me.public_key)
    out: list[Action] = []
    for i in (1, 2):
        key = KEYS[i]
        out += restarted.on_vote(Vote(VoteKind.PREVOTE, CHAIN, 1, round_, None, key.public_key).signed(key), 1.0)
    [proposed] = [a for a in out if isinstance(a, BroadcastProposal)]
    assert (proposed.proposal.round, proposed.proposal.value_hash, proposed.proposal.pol_round) == (round_, v_hash, 0)
    assert proposed.value == v
