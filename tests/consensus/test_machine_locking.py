"""The attack the locking rules exist for, played out message by message on four machines.

Validators 0, 1, 2 are honest and 3 is Byzantine (its messages are forged here with its key). In round 0 only
node 0 sees enough precommits to decide v. Nodes 1 and 2 move on to round 1, whose proposer (node 2) never saw
v's prevote quorum and proposes a fresh v'. Node 3 backs v' too. If node 1 ignored its lock on v, the prevotes of
1, 2 and 3 would be a quorum for v' and node 1 and 2 would decide v' — a fork. With the lock, v' stalls, and the
precommits node 0 gossips later bring the others to v.
"""

from __future__ import annotations

from consensus.actions import Action, BroadcastProposal, BroadcastVote, Commit
from consensus.machine import ConsensusMachine
from consensus.proposal import Proposal
from consensus.timeouts import Step, Timeout
from consensus.votes import Vote, VoteKind
from tests.consensus.test_machine_harness import CHAIN, FAST, FakeApp, make_keys, validator_set

KEYS = make_keys(4, salt=42)
VALIDATORS = validator_set(KEYS)
BYZANTINE = 3


class Router:
    """Delivers each honest broadcast only to the nodes a test names, and records what everyone did."""

    def __init__(self) -> None:
        self.machines = [
            ConsensusMachine(
                chain_id=CHAIN, app=FakeApp(f"n{i}"), height=1, validators=VALIDATORS, key=KEYS[i], params=FAST
            )
            for i in range(3)
        ]
        self.sent: dict[int, list[Action]] = {i: [] for i in range(3)}
        self.commits: dict[int, Commit] = {}

    def record(self, node: int, actions: list[Action]) -> None:
        self.sent[node] += actions
        for action in actions:
            if isinstance(action, Commit):
                self.commits[node] = action

    def last_vote(self, node: int, kind: VoteKind, round_: int) -> Vote:
        votes = [a.vote for a in self.sent[node] if isinstance(a, BroadcastVote)]
        return next(v for v in reversed(votes) if v.kind is kind and v.round == round_)

    def deliver_vote(self, vote: Vote, *targets: int) -> None:
        for t in targets:
            self.record(t, self.machines[t].on_vote(vote, 0.0))

    def deliver_proposal(self, proposal: Proposal, value: bytes, *targets: int) -> None:
        for t in targets:
            self.record(t, self.machines[t].on_proposal(proposal, value, 0.0))

    def timeout(self, node: int, round_: int, step: Step) -> None:
        self.record(node, self.machines[node].on_timeout(Timeout(1, round_, step), 0.0))


def byzantine_vote(kind: VoteKind, round_: int, block_hash: bytes | None) -> Vote:
    key = KEYS[BYZANTINE]
    return Vote(kind, CHAIN, 1, round_, block_hash, key.public_key).signed(key)


def test_a_decision_seen_by_one_node_survives_a_byzantine_push_for_another_value() -> None:
    net = Router()
    for i in range(3):
        net.record(i, net.machines[i].on_start(0.0))
    # Round 0: node 1 proposes v; nodes 0 and 1 get it, node 2 does not and prevotes nil on its timeout.
    [proposed] = [a for a in net.sent[1] if isinstance(a, BroadcastProposal)]
    v = proposed.proposal.value_hash
    net.deliver_proposal(proposed.proposal, proposed.value, 0)
    net.timeout(2, 0, Step.PROPOSE)
    prevote = {i: net.last_vote(i, VoteKind.PREVOTE, 0) for i in range(3)}
    assert (prevote[0].block_hash, prevote[1].block_hash, prevote[2].block_hash) == (v, v, None)
    # Node 3 prevotes v towards 0 and 1 and nil towards 2. Nodes 0 and 1 lock on v and precommit it.
    net.deliver_vote(prevote[0], 1, 2)
    net.deliver_vote(prevote[1], 0, 2)
    net.deliver_vote(prevote[2], 0, 1)
    net.deliver_vote(byzantine_vote(VoteKind.PREVOTE, 0, v), 0, 1)
    net.deliver_vote(byzantine_vote(VoteKind.PREVOTE, 0, None), 2)
    assert [net.machines[i].locked_value for i in range(3)] == [v, v, None]
    net.timeout(2, 0, Step.PREVOTE)  # node 2 saw no quorum for anything: precommit nil
    precommit = {i: net.last_vote(i, VoteKind.PRECOMMIT, 0) for i in range(3)}
    # Node 0 alone gets a quorum of precommits for v (its own, node 1's and node 3's) and decides.
    net.deliver_vote(precommit[1], 0)
    net.deliver_vote(byzantine_vote(VoteKind.PRECOMMIT, 0, v), 0)
    assert net.commits[0].value_hash == v
    # Nodes 1 and 2 see precommits {v, nil, nil}: no decision, and their precommit timeouts take them to round 1.
    net.deliver_vote(precommit[2], 1)
    net.deliver_vote(precommit[1], 2)
    net.deliver_vote(byzantine_vote(VoteKind.PRECOMMIT, 0, None), 1, 2)
    net.timeout(1, 0, Step.PRECOMMIT)
    net.timeout(2, 0, Step.PRECOMMIT)
    assert (net.machines[1].round, net.machines[2].round) == (1, 1)
    # Round 1: node 2 proposes a fresh v'; node 3 backs it. Node 1 is locked on v and prevotes nil.
    [rival] = [a for a in net.sent[2] if isinstance(a, BroadcastProposal)]
    assert rival.proposal.value_hash != v and rival.proposal.pol_round == -1
    net.deliver_proposal(rival.proposal, rival.value, 1)
    assert net.last_vote(1, VoteKind.PREVOTE, 1).block_hash is None
    assert net.last_vote(2, VoteKind.PREVOTE, 1).block_hash == rival.proposal.value_hash
    net.deliver_vote(net.last_vote(1, VoteKind.PREVOTE, 1), 2)
    net.deliver_vote(net.last_vote(2, VoteKind.PREVOTE, 1), 1)
    net.deliver_vote(byzantine_vote(VoteKind.PREVOTE, 1, rival.proposal.value_hash), 1, 2)
    net.deliver_vote(byzantine_vote(VoteKind.PRECOMMIT, 1, rival.proposal.value_hash), 1, 2)
    assert 1 not in net.commits and 2 not in net.commits, "v' must not gather a quorum"
    # Later node 0's commit reaches them (re-gossip / block sync): they decide v, the same value.
    for late in net.commits[0].precommits:
        net.deliver_vote(late, 1, 2)
    for node in (1, 2):
        if node not in net.commits:  # node 2 never received v itself: it asks for it, and gets it by hash
            net.record(node, net.machines[node].on_value(v, proposed.value, 0.0))
    assert {c.value_hash for c in net.commits.values()} == {v}
    assert sorted(net.commits) == [0, 1, 2]
