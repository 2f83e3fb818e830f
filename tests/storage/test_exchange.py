from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from storage.address import CID
from storage.dht.keyspace import Contact
from storage.errors import BlockHashMismatchError, BlockNotFoundError, ProtocolError
from storage.exchange import (
    Blocks,
    GetBlocks,
    PeerScores,
    accept_blocks,
    decode_blocks,
    decode_get_blocks,
    encode_blocks,
    encode_get_blocks,
    serve_get_blocks,
)
from storage.fetch import BlockFetcher
from storage.importer import Block, import_bytes

DATA = bytes(i * 31 % 256 for i in range(40_000))
ROOT, BLOCKS = import_bytes(DATA, chunk_size=1000, max_links=4)
STORE = {b.cid: b.data for b in BLOCKS}


def _get(cid: CID) -> bytes:
    if cid not in STORE:
        raise BlockNotFoundError(str(cid))
    return STORE[cid]


def test_wire_roundtrip_and_server_budget() -> None:
    wanted = GetBlocks(tuple(b.cid for b in BLOCKS[:5]))
    assert decode_get_blocks(encode_get_blocks(wanted)) == wanted
    response = serve_get_blocks(wanted, _get, max_bytes=2500)
    assert len(response.blocks) == 2  # 1000-byte leaves; the third would pass the budget
    assert decode_blocks(encode_blocks(response)) == response
    assert accept_blocks(wanted.cids, response) == list(response.blocks)


def test_missing_blocks_are_listed() -> None:
    absent = CID.of(0x55, b"nobody has this")
    response = serve_get_blocks(GetBlocks((absent, BLOCKS[0].cid)), _get)
    assert response.missing == (absent,) and [b.cid for b in response.blocks] == [BLOCKS[0].cid]


def test_tampered_or_unrequested_blocks_are_rejected() -> None:
    cid = BLOCKS[0].cid
    with pytest.raises(BlockHashMismatchError):
        accept_blocks([cid], Blocks((Block(cid, b"evil"),)))
    with pytest.raises(ProtocolError):
        accept_blocks([cid], Blocks((BLOCKS[1],)))
    with pytest.raises(ProtocolError):
        decode_get_blocks(b"\xa0")


def _peer(name: str) -> Contact:
    return Contact(name.encode(), ())


Handler = Callable[[Contact, GetBlocks], Awaitable[Blocks]]


def _transport(behaviour: dict[bytes, str], log: list[bytes]) -> Handler:
    async def request(peer: Contact, ask: GetBlocks) -> Blocks:
        log.append(peer.peer_id)
        mode = behaviour[peer.peer_id]
        if mode == "timeout":
            raise TimeoutError
        served = serve_get_blocks(ask, _get)
        if mode == "evil":
            return Blocks(tuple(Block(b.cid, b.data[::-1] + b"!") for b in served.blocks))
        if mode == "empty":
            return Blocks((), ask.cids)
        return served

    return request


async def test_cat_streams_the_file_from_honest_providers() -> None:
    log: list[bytes] = []
    fetcher = BlockFetcher(_transport({b"a": "good", b"b": "good"}, log), window=3)
    pieces = [piece async for piece in fetcher.cat(ROOT, [_peer("a"), _peer("b")])]
    assert b"".join(pieces) == DATA
    assert set(log) == {b"a", b"b"}  # work was spread over both


async def test_bad_provider_is_dropped_and_the_file_still_arrives() -> None:
    log: list[bytes] = []
    scores = PeerScores()
    fetcher = BlockFetcher(_transport({b"evil": "evil", b"good": "good", b"slow": "timeout"}, log), scores)
    data = b"".join([p async for p in fetcher.cat(ROOT, [_peer("evil"), _peer("slow"), _peer("good")])])
    assert data == DATA
    assert scores.banned(b"evil") and log.count(b"evil") == 1  # asked once, never again
    assert scores.score(b"good") > 0 > scores.score(b"slow")


async def test_no_usable_provider_is_a_typed_error() -> None:
    fetcher = BlockFetcher(_transport({b"e": "empty", b"x": "evil"}, []))
    with pytest.raises(BlockNotFoundError):
        _ = [p async for p in fetcher.cat(ROOT, [_peer("e"), _peer("x")])]


async def test_sink_receives_every_verified_block() -> None:
    stored: list[Block] = []

    async def sink(blocks: list[Block]) -> None:
        stored.extend(blocks)

    fetcher = BlockFetcher(_transport({b"a": "good"}, []), sink=sink)
    _ = [p async for p in fetcher.cat(ROOT, [_peer("a")])]
    assert {b.cid for b in stored} == set(STORE)


def test_scores_rank_and_ban_after_repeated_failures() -> None:
    scores = PeerScores()
    scores.delivered(b"a", 3)
    for _ in range(4):
        scores.failed(b"b")
    assert scores.ranked([b"b", b"c", b"a"]) == [b"a", b"c"] and scores.banned(b"b")


def test_only_bad_data_is_remembered_as_misbehaviour() -> None:
    scores = PeerScores()
    for _ in range(5):
        scores.failed(b"slow")  # banned within this fetch, but only for being unreachable
    scores.misbehaved(b"liar", BlockHashMismatchError("tampered"))
    assert scores.banned(b"slow") and scores.banned(b"liar")
    assert scores.misbehaving() == {b"liar"}
