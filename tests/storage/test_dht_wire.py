from __future__ import annotations

import pytest

from primitives import codec
from storage.address import CID, RAW
from storage.dht.keyspace import Contact, key_of, provider_key
from storage.dht.lookup import LookupKind
from storage.dht.messages import (
    Ack,
    AddProvider,
    FindNode,
    GetProviders,
    Nodes,
    Ping,
    decode_request,
    decode_response,
    encode_message,
)
from storage.dht.node import DhtNode
from storage.errors import ProtocolError

PEERS = [Contact(bytes([i]) * 34, (f"/ip4/127.0.0.1/tcp/{5000 + i}",)) for i in range(1, 40)]


def test_messages_roundtrip() -> None:
    for request in (FindNode(2**255 + 7), GetProviders(b"\x12\x20" + b"k" * 32), AddProvider(b"key", PEERS[0]), Ping()):
        assert decode_request(encode_message(request)) == request
    for response in (Nodes(tuple(PEERS[:3]), tuple(PEERS[3:4])), Ack()):
        assert decode_response(encode_message(response)) == response


@pytest.mark.parametrize(
    "value",
    [
        {"type": "find_node", "target": b"short"},
        {"type": "get_providers", "key": b""},
        {"type": "add_provider", "key": b"k", "provider": {"id": b"p", "addrs": "nope"}},
        {"type": "teleport"},
        {"kind": "ping"},
        [1, 2, 3],
    ],
)
def test_bad_requests_are_protocol_errors(value: codec.Value) -> None:
    with pytest.raises(ProtocolError):
        decode_request(codec.encode(value))


def test_garbage_and_oversized_messages_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        decode_request(b"\xff\x00garbage")
    with pytest.raises(ProtocolError):
        decode_response(codec.encode({"type": "nodes", "closer": [{"id": b"x", "addrs": []}] * 65, "providers": []}))
    with pytest.raises(ProtocolError):
        decode_response(b"\x00" * (300 << 10))


def test_handler_answers_and_learns_the_sender() -> None:
    node = DhtNode(Contact(b"me"), k=5)
    for peer in PEERS[:10]:
        node.table.observe(peer, 0.0)
    sender = PEERS[20]
    handled = node.handle(sender, FindNode(key_of(b"x")), 1.0)
    assert isinstance(handled.response, Nodes) and len(handled.response.closer) == 5
    assert sender not in handled.response.closer
    assert sender.peer_id in node.table or handled.ping is not None


def test_add_provider_only_for_the_sender_then_get_providers_returns_it() -> None:
    node = DhtNode(Contact(b"me"))
    key = provider_key(CID.of(RAW, b"ehr"))
    with pytest.raises(ProtocolError):
        node.handle(PEERS[0], AddProvider(key, PEERS[1]), 0.0)
    assert node.handle(PEERS[1], AddProvider(key, PEERS[1]), 0.0).response == Ack()
    node.handle(PEERS[1], AddProvider(key, PEERS[1]), 5.0)  # a re-announcement: still one record
    response = node.handle(PEERS[2], GetProviders(key), 6.0).response
    assert isinstance(response, Nodes) and response.providers == (PEERS[1],)
    assert node.expire(6.0 + 48 * 3600) == 1
    response = node.handle(PEERS[2], GetProviders(key), 7.0 + 48 * 3600).response
    assert isinstance(response, Nodes) and response.providers == ()


def test_provide_records_ourselves_schedules_republish_and_announces_to_closest() -> None:
    me = Contact(b"me", ("/ip4/127.0.0.1/tcp/1",))
    node = DhtNode(me, k=4)
    for peer in PEERS:
        node.table.observe(peer, 0.0)
    cid = CID.of(RAW, b"record")
    lookup = node.provide(cid, 0.0)
    local, _ = node.find_providers(cid, 1.0)
    assert local == [me]
    for peer in lookup.next_queries(0.0):
        lookup.on_response(peer.peer_id, [], now=1.0)
    while not lookup.finished:
        for peer in lookup.next_queries(1.0):
            lookup.on_response(peer.peer_id, [], now=1.0)
    messages = node.announcements(provider_key(cid), lookup)
    assert [peer for peer, _ in messages] == node.table.closest(key_of(provider_key(cid)), 4)
    assert all(m == AddProvider(provider_key(cid), me) for _, m in messages)
    assert node.due_announcements(3600.0) == []
    due = node.due_announcements(22 * 3600.0)
    assert [key for key, _ in due] == [provider_key(cid)] and due[0][1].kind is LookupKind.FIND_NODE
