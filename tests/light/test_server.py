"""The full node's light-protocol answers over CBOR and HTTP, and what it does with bad requests."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.chainstore import ChainStore
from consensus.genesis_block import build_genesis
from consensus.lightclient import LightClient
from consensus.votes import ValidatorSet
from node.ledger.light_server import LightServer, header_value_of_block
from node.light import wire
from node.light.errors import RemoteError, WireError
from node.light.follower import Follower
from node.light.sources import HttpSource
from primitives import codec
from tests.consensus.ledger_helpers import USER_KEYS, Chain, record
from tests.light.helpers import NEW_SET, RECORD_KEY, build_chain, store_of


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    s = store_of(build_chain(blocks=6, set_change_at=2), tmp_path_factory.mktemp("light") / "chain")
    yield s
    s.close()


def ask(server: LightServer, request: codec.Value) -> dict[str, codec.Value]:
    answer = codec.decode(server.answer(codec.encode(request)))
    assert isinstance(answer, dict)
    return answer


def test_head_headers_proof_and_validators_over_cbor(store: ChainStore) -> None:
    server = LightServer(None, store)
    head = wire.decode_head(server.answer(wire.head_request().encode()))
    assert head.header == store.head and head.commit == store.get_commit(6)
    entries = wire.decode_headers(server.answer(wire.headers_request(2, 99).encode()))
    assert [e.header.height for e in entries] == [2, 3, 4, 5, 6]
    # Header 3 names the set that signs from height 4 on; the answer carries it, everything else carries none.
    assert [e.next_validators for e in entries] == [None, NEW_SET, None, None, None]
    state = wire.decode_state(server.answer(wire.proof_request(RECORD_KEY).encode()))
    assert (state.height, state.value) == (6, b"v6")
    height, members = wire.decode_validators(server.answer(wire.validators_request(4).encode()))
    assert (height, members) == (4, NEW_SET)


@pytest.mark.parametrize(
    ("request_value", "code", "words"),
    [
        ({"type": "headers", "from": 7, "to": 9}, "not_found", "head is 6"),
        ({"type": "headers", "from": 0, "to": 3}, "bad_request", "1 ≤ from ≤ to"),
        ({"type": "headers", "from": 3, "to": 2}, "bad_request", "1 ≤ from ≤ to"),
        ({"type": "headers", "from": -1, "to": 2}, "bad_request", "non-negative"),
        ({"type": "headers", "from": 1}, "bad_request", "exactly the fields"),
        ({"type": "proof", "key": b""}, "bad_request", "1–511 bytes"),
        ({"type": "proof", "key": b"k" * 512}, "bad_request", "1–511 bytes"),
        ({"type": "proof", "key": "text"}, "bad_request", "byte string"),
        ({"type": "validators", "height": 99}, "not_found", "heights 1–7"),
        ({"type": "gossip"}, "bad_request", "unknown light request type"),
        ([1, 2], "bad_request", "expected a map"),
    ],
)
def test_bad_requests_get_typed_errors(store: ChainStore, request_value: codec.Value, code: str, words: str) -> None:
    server = LightServer(None, store)
    answer = ask(server, request_value)
    error = answer["error"]
    assert isinstance(error, dict) and error["code"] == code and words in str(error["message"])


async def test_a_stopping_node_answers_unavailable_and_does_not_read_its_store(store: ChainStore) -> None:
    server = LightServer(None, store)
    await server.stop()  # the light service stops before the ledger closes the store
    with pytest.raises(RemoteError) as err:
        wire.decode_head(server.answer(wire.head_request().encode()))
    assert err.value.code == "unavailable"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_any_bytes_get_an_answer_never_an_exception(store: ChainStore, data: bytes) -> None:
    answer = codec.decode(LightServer(None, store).answer(data))
    assert isinstance(answer, dict)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_decoders_raise_only_wire_or_remote_errors(data: bytes) -> None:
    for decode in (wire.decode_head, wire.decode_headers, wire.decode_state, wire.decode_validators):
        try:
            decode(data)
        except (WireError, RemoteError) as exc:
            assert str(exc)  # every refusal says why; any other exception type fails the test


def test_a_long_range_is_clipped_to_the_bound() -> None:
    request = wire.decode_request(codec.encode({"type": "headers", "from": 1, "to": 10**9}))
    assert request.end == wire.MAX_HEADERS


@pytest.fixture
async def http_url(store: ChainStore) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(LightServer(None, store).routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_device_without_libp2p_follows_and_reads_over_http(store: ChainStore, http_url: str) -> None:
    block0, _ = build_genesis(store.genesis)
    f = Follower(LightClient(block0.header, ValidatorSet(store.genesis.validators)), [HttpSource(http_url)])
    assert await f.sync() == 6 and f.header == store.head
    got = await f.get_state(RECORD_KEY)
    assert got.value == b"v6" and got.height == 6


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/light/headers?from=1", 400, "bad_request"),
        ("/light/headers?from=x&to=2", 400, "bad_request"),
        ("/light/headers?from=50&to=60", 404, "not_found"),
        ("/light/proof?key=zz", 400, "bad_request"),
        ("/light/proof", 400, "bad_request"),
        ("/light/validators?height=-3", 400, "bad_request"),
    ],
)
async def test_bad_http_requests_get_json_errors(http_url: str, path: str, status: int, code: str) -> None:
    def fetch() -> tuple[int, dict[str, str]]:
        try:
            urllib.request.urlopen(http_url + path, timeout=5)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        raise AssertionError("expected an HTTP error")

    got_status, body = await asyncio.to_thread(fetch)
    assert got_status == status and body["code"] == code and body["error"]


@pytest.mark.parametrize("txs", [0, 1, 30])
def test_the_header_is_read_from_a_stored_block_without_its_transactions(txs: int) -> None:
    chain = Chain()
    block, _, _ = chain.add_block([record(USER_KEYS[i % len(USER_KEYS)], i // len(USER_KEYS)) for i in range(txs)])
    assert len(block.txs) == txs
    raw = block.encode()
    assert header_value_of_block(raw) == block.header.to_value()
    # A layout this version does not write is decoded in full rather than misread.
    assert header_value_of_block(codec.encode({"header": block.header.to_value()})) == block.header.to_value()


class MovedStore:
    """A store whose head does not match the state its reader sees (as if a block landed mid-read)."""

    def __init__(self, store: ChainStore) -> None:
        self._store = store
        self.height = store.height
        self.head = dataclasses.replace(store.head, state_root=bytes(32))

    def reader(self) -> Any:
        return self._store.reader()


def test_a_proof_that_does_not_match_the_reported_header_is_never_served(store: ChainStore) -> None:
    moved = cast(ChainStore, MovedStore(store))
    with pytest.raises(RemoteError) as err:
        wire.decode_state(LightServer(None, moved).answer(wire.proof_request(RECORD_KEY).encode()))
    assert err.value.code == "unavailable" and "ask again" in str(err.value)
