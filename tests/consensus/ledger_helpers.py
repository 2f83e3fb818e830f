"""Shared builders for the ledger tests: deterministic keys, a genesis, signed txs and committed blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.block import Block, Commit, Header
from consensus.execute import BlockResult, Registry, build_block
from consensus.genesis import Genesis, Params
from consensus.genesis_block import build_genesis
from consensus.state import MemoryState
from consensus.system_txs import default_registry
from consensus.tx import Tx
from consensus.votes import ValidatorSet, Vote, VoteKind
from primitives.keys import SigningKey

CHAIN_ID = "ehrnet-test"


def key(n: int) -> SigningKey:
    return SigningKey(n.to_bytes(32, "big"))


VALIDATOR_KEYS = [key(i) for i in range(1, 5)]
ADMIN_KEY = key(99)
USER_KEYS = [key(1000 + i) for i in range(8)]


def make_genesis(params: Params | None = None, validators: list[SigningKey] | None = None) -> Genesis:
    vals = validators or VALIDATOR_KEYS
    return Genesis(CHAIN_ID, tuple(k.public_key for k in vals), (ADMIN_KEY.public_key,), 1_000, params or Params())


def record(sender: SigningKey, nonce: int, k: bytes = b"key", v: bytes = b"value") -> Tx:
    return Tx.create(sender, CHAIN_ID, "record", nonce, {"key": k, "value": v})


def sign_commit(header: Header, signers: list[SigningKey], round_: int = 0) -> Commit:
    votes = tuple(
        Vote(VoteKind.PRECOMMIT, header.chain_id, header.height, round_, header.hash, k.public_key).signed(k)
        for k in signers
    )
    return Commit(header.height, round_, header.hash, votes)


@dataclass
class Chain:
    """An in-memory chain driven directly (no consensus): build, sign and apply blocks."""

    genesis: Genesis = field(default_factory=make_genesis)
    registry: Registry = field(default_factory=default_registry)
    keys: dict[bytes, SigningKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        block0, changes = build_genesis(self.genesis)
        self.state = MemoryState()
        self.state.apply(changes)
        self.blocks: list[Block] = [block0]
        self.commits: list[Commit | None] = [None]
        self.validators = ValidatorSet(self.genesis.validators)
        for k in [*VALIDATOR_KEYS, ADMIN_KEY, *USER_KEYS]:
            self.keys[k.public_key] = k

    @property
    def head(self) -> Header:
        return self.blocks[-1].header

    def propose(self, txs: list[Tx], time_step: int = 1000) -> tuple[Block, BlockResult]:
        height = self.head.height + 1
        proposer = self.validators.proposer(height, 0)
        return build_block(
            self.state,
            self.head,
            txs,
            proposer=proposer,
            time_ms=self.head.time_ms + time_step,
            params=self.genesis.params,
            registry=self.registry,
        )

    def finalise(self, block: Block, result: BlockResult) -> Commit:
        signers = [self.keys[m] for m in self.validators.members[: self.validators.quorum]]
        commit = sign_commit(block.header, signers)
        self.state.apply(result.changes)
        self.blocks.append(block)
        self.commits.append(commit)
        self.validators = result.next_validators
        return commit

    def add_block(self, txs: list[Tx]) -> tuple[Block, BlockResult, Commit]:
        block, result = self.propose(txs)
        return block, result, self.finalise(block, result)
