"""Builders for the light-client tests: a signed chain in a real chain store, served in-process, and sources
that lie in chosen ways."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from consensus.chainstore import ChainStore
from consensus.state import record_key
from consensus.tx import Tx
from consensus.votes import ValidatorSet
from node.ledger.light_server import LightServer
from node.light import wire
from node.light.errors import SourceError
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, VALIDATOR_KEYS, Chain, key, record

NEW_KEYS = [*VALIDATOR_KEYS[1:], key(60), key(61)]
NEW_SET = ValidatorSet(tuple(k.public_key for k in NEW_KEYS))


def build_chain(blocks: int = 6, set_change_at: int | None = None) -> Chain:
    """A chain with one record per block (user 0 writes key b"k" = b"v<n>"), optionally handing over to
    NEW_SET through a validator_set_change in block `set_change_at`."""
    chain = Chain()
    for k in NEW_KEYS:
        chain.keys[k.public_key] = k
    nonce = 0
    for height in range(1, blocks + 1):
        if height == set_change_at:
            members: list[codec.Value] = [k.public_key for k in NEW_KEYS]
            chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "validator_set_change", 0, {"validators": members})])
        else:
            chain.add_block([record(USER_KEYS[0], nonce, b"k", b"v%d" % height)])
            nonce += 1
    return chain


def store_of(chain: Chain, path: Path) -> ChainStore:
    """A chain store holding `chain` (re-executed block by block, as a syncing node would)."""
    store = ChainStore(path, chain.genesis)
    for block, commit in zip(chain.blocks[1:], chain.commits[1:], strict=True):
        assert commit is not None
        store.import_block(block, commit, chain.registry)
    return store


RECORD_KEY = record_key(USER_KEYS[0].address, b"k")


class LocalSource:
    """A full node served in-process through the real server and the real wire codec (no sockets)."""

    def __init__(self, server: LightServer, name: str = "honest") -> None:
        self.server = server
        self.name = name
        self.requests = 0

    async def _ask(self, request: wire.LightRequest) -> bytes:
        self.requests += 1
        return self.server.answer(request.encode())

    async def head(self) -> wire.SignedHeader:
        return wire.decode_head(await self._ask(wire.head_request()))

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return wire.decode_headers(await self._ask(wire.headers_request(start, end)))

    async def state(self, key: bytes) -> wire.StateAnswer:
        return wire.decode_state(await self._ask(wire.proof_request(key)))

    async def validators(self, height: int) -> ValidatorSet:
        return wire.decode_validators(await self._ask(wire.validators_request(height)))[1]


class TamperingSource(LocalSource):
    """Serves what the honest server says, passed through `tamper_entry` / `tamper_state`."""

    def __init__(self, server: LightServer, name: str = "forger") -> None:
        super().__init__(server, name)

    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        return entry

    def tamper_state(self, answer: wire.StateAnswer) -> wire.StateAnswer:
        return answer

    async def head(self) -> wire.SignedHeader:
        return self.tamper_entry(await super().head())

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return [self.tamper_entry(e) for e in await super().headers(start, end)]

    async def state(self, key: bytes) -> wire.StateAnswer:
        return self.tamper_state(await super().state(key))


class DeadSource:
    """A node that cannot be reached."""

    name = "dead"

    async def head(self) -> wire.SignedHeader:
        raise SourceError("dead: connection refused")

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        raise SourceError("dead: connection refused")

    async def state(self, key: bytes) -> wire.StateAnswer:
        raise SourceError("dead: connection refused")

    async def validators(self, height: int) -> ValidatorSet:
        raise SourceError("dead: connection refused")


def replace_header(entry: wire.SignedHeader, **changes: object) -> wire.SignedHeader:
    return dataclasses.replace(entry, header=dataclasses.replace(entry.header, **changes))  # type: ignore[arg-type]
