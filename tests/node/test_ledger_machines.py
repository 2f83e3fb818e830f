"""The node's chain binding (node/ledger/chain_app.py: ChainApp) driving the real consensus machine: four validators,
each with its own LMDB store and mempool, exchanging proposals and votes in memory (no network, no timeouts
needed on the happy path)."""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from consensus import actions
from consensus.block import Commit
from consensus.chainstore import ChainStore
from consensus.execute import BlockResult
from consensus.machine import ConsensusMachine
from consensus.mempool import Mempool
from consensus.proposal import Proposal
from consensus.state import get_nonce, record_key
from consensus.system_txs import default_registry
from consensus.votes import Vote
from node.ledger.chain_app import ChainApp
from primitives.keys import SigningKey
from tests.consensus.ledger_helpers import CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, make_genesis, record


@dataclass
class Node:
    key: SigningKey
    store: ChainStore
    mempool: Mempool
    app: ChainApp
    machine: ConsensusMachine


def committed_nonce(store: ChainStore, address: bytes) -> int:
    return get_nonce(store.get_value, address)


def make_nodes(tmp_path: Path) -> list[Node]:
    genesis = make_genesis()
    nodes = []
    for i, key in enumerate(VALIDATOR_KEYS):
        store = ChainStore(tmp_path / f"node{i}", genesis)
        registry = default_registry()
        mempool = Mempool(
            chain_id=CHAIN_ID,
            params=genesis.params,
            registry=registry,
            nonce_of=functools.partial(committed_nonce, store),
        )
        clock = iter(range(10_000, 10_000_000, 1000))
        app = ChainApp(store, mempool, registry, key.public_key, clock_ms=functools.partial(next, clock))
        machine = ConsensusMachine(chain_id=CHAIN_ID, app=app, height=1, validators=store.next_validators(), key=key)
        nodes.append(Node(key, store, mempool, app, machine))
    return nodes


def finalise(node: Node, decided: actions.Commit) -> BlockResult:
    """What the ledger service does with a decision: persist the block with its precommits, update the pool."""
    block, result = node.app.executed(decided.value)
    node.store.commit_block(
        block, Commit(decided.height, decided.round, decided.value_hash, decided.precommits), result
    )
    node.mempool.update(block.txs)
    return result


def run(nodes: list[Node], until_height: int) -> None:
    inbox: deque[tuple[int, object, bytes | None]] = deque()
    now = 0.0

    def handle(index: int, produced: list[actions.Action]) -> None:
        node = nodes[index]
        for action in produced:
            if isinstance(action, actions.BroadcastProposal):
                inbox.extend((j, action.proposal, action.value) for j in range(len(nodes)) if j != index)
            elif isinstance(action, actions.BroadcastVote):
                inbox.extend((j, action.vote, None) for j in range(len(nodes)) if j != index)
            elif isinstance(action, actions.Commit):
                result = finalise(node, action)
                if node.store.height < until_height:
                    handle(index, node.machine.start_height(action.height + 1, result.next_validators, now))

    for i, node in enumerate(nodes):
        handle(i, node.machine.on_start(now))
    while inbox:
        target, message, value = inbox.popleft()
        now += 0.001
        machine = nodes[target].machine
        if isinstance(message, Proposal):
            handle(target, machine.on_proposal(message, value, now))
        elif isinstance(message, Vote):
            handle(target, machine.on_vote(message, now))


def test_four_validators_finalise_mempool_txs_into_identical_chains(tmp_path: Path) -> None:
    nodes = make_nodes(tmp_path)
    txs = [record(user, n, b"k%d" % n, b"v") for user in USER_KEYS[:4] for n in range(5)]
    for node in nodes:  # as if gossiped to every node
        for tx in txs:
            node.mempool.add(tx)
    run(nodes, until_height=3)
    heads = {node.store.height for node in nodes}
    assert heads == {3}
    for height in (1, 2, 3):
        hashes = {node.store.get_block(height).hash for node in nodes}  # type: ignore[union-attr]
        assert len(hashes) == 1
    first = nodes[0].store.get_block(1)
    assert first is not None and len(first.txs) == len(txs)  # everything ready went into the first block
    assert all(len(node.mempool) == 0 for node in nodes)
    for node in nodes:
        assert node.store.get_value(record_key(USER_KEYS[2].address, b"k4")) == b"v"
        commit = node.store.get_commit(1)
        assert commit is not None and len(commit.votes) >= 3
        receipt = node.store.get_receipt(txs[7].hash)
        assert receipt is not None and receipt.ok


def test_invalid_or_garbage_values_are_refused_without_raising(tmp_path: Path) -> None:
    node = make_nodes(tmp_path)[0]
    assert not node.app.validate(1, b"not a block")
    assert len(node.app.value_hash(b"not a block")) == 32
    value = node.app.propose(1, 0, 0.0)
    assert node.app.validate(1, value)
    assert not node.app.validate(2, value)
    tampered = value.replace(node.store.head.hash, bytes(32))
    assert not node.app.validate(1, tampered)
