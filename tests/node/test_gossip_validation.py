"""Judging ledger gossip before it is forwarded (node/ledger/gossip/validation.py, node/p2p/guard.py): what is rejected
and penalised, what is only ignored (an honest member lagging or restarting), and the ban that follows."""

from __future__ import annotations

from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from consensus.gossip_batch import ConsensusBatch
from consensus.votes import Vote, VoteKind
from node.ledger import wire
from node.ledger.gossip.validation import HEIGHT_WINDOW, LedgerGossipJudge, MeshMembers
from node.p2p.guard import GossipGuards
from node.p2p.identity import peer_id_of_public_key
from node.p2p.peer_score import PeerScorer, ScoreSettings
from node.p2p.types import GossipMessage, TopicGuard, Verdict
from primitives import codec
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, record

VALIDATOR = VALIDATOR_KEYS[0]
MEMBER_PEER = peer_id_of_public_key(VALIDATOR.public_key)
OUTSIDER = SigningKey(b"\x07" * 32)
OUTSIDER_PEER = peer_id_of_public_key(OUTSIDER.public_key)


def judge(head: int = 10) -> LedgerGossipJudge:
    members = MeshMembers()
    members.update([], [k.public_key for k in VALIDATOR_KEYS])
    return LedgerGossipJudge(CHAIN_ID, members, lambda: head, max_tx_bytes=4096)


def vote(key: SigningKey, height: int = 11, chain_id: str = CHAIN_ID) -> Vote:
    return Vote(VoteKind.PREVOTE, chain_id, height, 0, b"\x01" * 32, key.public_key).signed(key)


def consensus(*votes: Vote) -> GossipMessage:
    return GossipMessage(wire.consensus_topic(CHAIN_ID), ConsensusBatch((), votes).encode(), MEMBER_PEER)


def test_members_are_validators_plus_the_chain_list_plus_legacy_config_nodes() -> None:
    members = MeshMembers(legacy_peer_ids=["12D3KooWlegacy"])
    members.update([USER_KEYS[0].public_key], [VALIDATOR.public_key])
    assert members.admits(MEMBER_PEER) and members.admits(peer_id_of_public_key(USER_KEYS[0].public_key))
    assert members.admits("12D3KooWlegacy") and not members.admits(OUTSIDER_PEER)


def test_consensus_verdicts() -> None:
    j = judge(head=10)
    assert j.consensus(consensus(vote(VALIDATOR))) is Verdict.ACCEPT
    # What no honest member sends: penalised.
    assert j.consensus(GossipMessage("t", b"\xffgarbage", MEMBER_PEER)) is Verdict.REJECT
    assert j.consensus(GossipMessage("t", codec.encode({"proposals": "none", "votes": []}), MEMBER_PEER)) is (
        Verdict.REJECT
    )
    forged = Vote(VoteKind.PREVOTE, CHAIN_ID, 11, 0, None, VALIDATOR.public_key, b"\x00" * 64)
    assert j.consensus(consensus(forged)) is Verdict.REJECT
    assert j.consensus(consensus(vote(VALIDATOR, chain_id="another-chain"))) is Verdict.REJECT
    # What an honest member may send while our view differs: dropped, never penalised.
    assert j.consensus(consensus(vote(VALIDATOR, height=11 + HEIGHT_WINDOW + 1))) is Verdict.IGNORE
    assert j.consensus(consensus(vote(VALIDATOR, height=1))) is Verdict.ACCEPT  # far behind us, inside the window
    assert j.consensus(consensus(vote(USER_KEYS[1]))) is Verdict.IGNORE  # a set change we have not seen yet
    assert j.consensus(consensus()) is Verdict.IGNORE


def test_tx_verdicts() -> None:
    j = judge()
    topic = wire.txs_topic(CHAIN_ID)
    good = record(USER_KEYS[0], 0).raw
    assert j.txs(GossipMessage(topic, wire.encode_txs([good]), MEMBER_PEER)) is Verdict.ACCEPT
    assert j.txs(GossipMessage(topic, b"\x00\x01", MEMBER_PEER)) is Verdict.REJECT
    assert j.txs(GossipMessage(topic, wire.encode_txs([b"not a tx"]), MEMBER_PEER)) is Verdict.REJECT
    assert j.txs(GossipMessage(topic, wire.encode_txs([bytes(5000)]), MEMBER_PEER)) is Verdict.REJECT
    other = judge()
    other.chain_id = "another-chain"
    assert other.txs(GossipMessage(topic, wire.encode_txs([good]), MEMBER_PEER)) is Verdict.REJECT


def test_guards_reject_non_members_penalise_the_forwarder_and_ban_it() -> None:
    clock = [100.0]
    bans: list[tuple[str, float]] = []
    scorer = PeerScorer(ScoreSettings(ban_threshold=3.0, first_ban_s=60.0))
    guards = GossipGuards("12D3KooWself", scorer, lambda peer, until: bans.append((peer, until)), lambda: clock[0])
    j = judge()
    topic = wire.consensus_topic(CHAIN_ID)
    guards.add(topic, TopicGuard(j.members.admits, j.consensus))
    assert guards.admits(MEMBER_PEER, topic) and not guards.admits(OUTSIDER_PEER, topic)
    assert guards.admits(OUTSIDER_PEER, "/ehrnet/probe/1")  # ungated topics stay open

    def message(origin: str, data: bytes) -> rpc_pb2.Message:
        return rpc_pb2.Message(data=data, topicIDs=[topic], from_id=ID.from_base58(origin).to_bytes())

    well_formed = ConsensusBatch((), (vote(VALIDATOR),)).encode()
    assert guards.judge(topic, MEMBER_PEER, message(MEMBER_PEER, well_formed)) is Verdict.ACCEPT
    # A well-formed message from a non-member is rejected and its sender penalised; relayed by a member (whose
    # member list may be newer than ours) it is dropped without penalising the member.
    assert guards.judge(topic, OUTSIDER_PEER, message(OUTSIDER_PEER, well_formed)) is Verdict.REJECT
    assert guards.judge(topic, MEMBER_PEER, message(OUTSIDER_PEER, well_formed)) is Verdict.IGNORE
    assert guards.judge(topic, OUTSIDER_PEER, message(OUTSIDER_PEER, b"garbage")) is Verdict.REJECT
    assert bans == []
    assert guards.judge(topic, OUTSIDER_PEER, message(OUTSIDER_PEER, b"garbage")) is Verdict.REJECT
    assert bans == [(OUTSIDER_PEER, 160.0)]
    status = guards.status({OUTSIDER_PEER: 160.0})
    assert status["verdicts"] == {"accept": 1, "ignore": 1, "reject": 3}
    assert status["rejected_from"] == {OUTSIDER_PEER: 3}
    assert status["banned"] == {OUTSIDER_PEER: 60.0}
    # A member's own lag is never a penalty: a vote far ahead is ignored, and its score does not move.
    far = ConsensusBatch((), (vote(VALIDATOR, height=11 + HEIGHT_WINDOW + 5),)).encode()
    assert guards.judge(topic, MEMBER_PEER, message(MEMBER_PEER, far)) is Verdict.IGNORE
    assert scorer.score(MEMBER_PEER, clock[0]) == 0.0
