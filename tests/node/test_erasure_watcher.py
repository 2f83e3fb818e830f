"""The erasure watcher acts on every erasure event of the EHR contract at least once, in chain order, ignores
other contracts' events of that name, and a restart resumes from its cursor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from consensus.chainstore import ChainStore
from consensus.tx import Tx
from node.ehr.erasure import ErasureWatcher
from primitives import codec
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain
from tests.harness import await_until
from tests.node.store_ledger import StoreLedger

SHREDDER = """
def init():
    pass


def erase(uid: bytes, cid: str):
    ctx.emit("erasure", {"uid": uid, "cids": [cid]})
"""
Seen = list[tuple[bytes, list[str]]]


class World:
    """A real chain store with two deployed copies of one contract: `shredder` (the one the watcher trusts
    here) and `impostor`."""

    def __init__(self, path: Path) -> None:
        self.chain = Chain()
        self.store = ChainStore(path, self.chain.genesis, initial_map_size=1 << 22)
        self.ledger = StoreLedger(self.chain.genesis, self.store)  # a block added is announced on its feed
        self.nonce = 0
        deploys = [
            Tx.create(ADMIN_KEY, CHAIN_ID, "deploy", i, {"source": SHREDDER, "args": [], "gas_limit": 10**6,
                                                         "name": name})
            for i, name in enumerate(("shredder", "impostor"))
        ]  # fmt: skip
        self.add(deploys)

    def add(self, txs: list[Tx]) -> None:
        block, _, commit = self.chain.add_block(txs)
        self.ledger.import_block(block, commit, self.chain.registry)

    def erase(self, contract: str, uid: bytes) -> Tx:
        body: dict[str, codec.Value] = {
            "contract": contract, "function": "erase", "args": [uid, f"cid-{uid.hex()}"], "gas_limit": 10**6,
        }  # fmt: skip
        self.nonce += 1
        return Tx.create(USER_KEYS[0], CHAIN_ID, "call", self.nonce - 1, body)

    def empty_blocks(self, count: int) -> None:
        for _ in range(count):
            self.add([])


@asynccontextmanager
async def watching(world: World, cursor: Path) -> AsyncIterator[tuple[ErasureWatcher, Seen]]:
    seen: Seen = []
    watcher = ErasureWatcher(world.ledger, [lambda u, c: seen.append((u, c))], cursor)
    watcher.contract_name = "shredder"
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher, seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def at_head(watcher: ErasureWatcher, world: World) -> bool:
    return watcher.scanned_to == world.store.height


async def test_each_erasure_of_the_trusted_contract_is_handled_once_in_chain_order(tmp_path: Path) -> None:
    world = World(tmp_path / "chain")
    world.add([world.erase("shredder", b"\xaa"), world.erase("impostor", b"\xee"), world.erase("shredder", b"\xbb")])
    world.empty_blocks(3)
    async with watching(world, tmp_path / "erasure.cursor") as (watcher, seen):
        await await_until(lambda: at_head(watcher, world), 5, what="the watcher reaches the head")
        assert seen == [(b"\xaa", ["cid-aa"]), (b"\xbb", ["cid-bb"])]
        world.add([world.erase("shredder", b"\xcc")])
        await await_until(lambda: len(seen) == 3, 5, what="a new block's erasure is handled")
        assert seen[2] == (b"\xcc", ["cid-cc"])
        await await_until(lambda: at_head(watcher, world), 5, what="the watcher reaches the new head")
    assert seen == [(b"\xaa", ["cid-aa"]), (b"\xbb", ["cid-bb"]), (b"\xcc", ["cid-cc"])]
    world.store.close()


async def test_a_restart_resumes_from_the_cursor(tmp_path: Path) -> None:
    world = World(tmp_path / "chain")
    cursor = tmp_path / "erasure.cursor"
    world.add([world.erase("shredder", b"\xaa")])
    async with watching(world, cursor) as (watcher, _):
        await await_until(lambda: at_head(watcher, world), 5, what="the first run reaches the head")
    assert json.loads(cursor.read_text()) == {"chain_id": CHAIN_ID, "height": world.store.height}
    world.add([world.erase("shredder", b"\xbb")])
    async with watching(world, cursor) as (watcher, seen):
        await await_until(lambda: at_head(watcher, world), 5, what="the restarted watcher reaches the head")
        assert seen == [(b"\xbb", ["cid-bb"])]
    world.store.close()


async def test_a_damaged_cursor_or_another_chain_rescans_from_the_start(tmp_path: Path) -> None:
    world = World(tmp_path / "chain")
    world.add([world.erase("shredder", b"\xaa")])
    cursor = tmp_path / "erasure.cursor"
    height = world.store.height
    for content in ("{not json", json.dumps({"chain_id": "another-chain", "height": height}), '{"height": -4}'):
        cursor.write_text(content)
        async with watching(world, cursor) as (watcher, seen):
            await await_until(lambda: at_head(watcher, world), 5, what="a rescan reaches the head")
            assert seen == [(b"\xaa", ["cid-aa"])], content
    world.store.close()
