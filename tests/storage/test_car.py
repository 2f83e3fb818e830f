"""CAR v1 encoding and decoding (storage/car.py): the header's exact bytes, the deterministic depth-first order,
incremental decoding, and a clear `CarError` for every kind of bad input."""

from __future__ import annotations

import hashlib
import itertools
import os
import re

import cbor2
import pytest

from storage.address import CID, DAG_PB, RAW
from storage.car import CarDecoder, car_sections, dag_blocks, encode_block, encode_header, encode_varint
from storage.dag import links_of
from storage.errors import CarError
from storage.importer import Block, Importer

CHUNK = 262_144


def _import(data: bytes) -> tuple[CID, dict[CID, bytes]]:
    importer = Importer()
    blocks = importer.feed(data)
    root, rest = importer.finish()
    return root, {b.cid: b.data for b in [*blocks, *rest]}


def test_header_bytes_are_dag_cbor_with_tag_42_links() -> None:
    root = CID.of(RAW, b"a")
    header = encode_header([root])
    body = (
        b"\xa2"  # map of 2
        + b"\x65roots"
        + b"\x81"  # array of 1
        + b"\xd8\x2a"  # tag 42
        + b"\x58\x25\x00"  # bytes(37): the 0x00 multibase prefix, then the binary CID
        + root.to_bytes()
        + b"\x67version\x01"
    )
    assert header == bytes([len(body)]) + body
    assert encode_block(root, b"a") == bytes([36 + 1]) + root.to_bytes() + b"a"
    assert encode_varint(300) == b"\xac\x02" and encode_varint(0) == b"\x00"


def test_blocks_come_depth_first_in_link_order_each_once() -> None:
    data = os.urandom(3 * CHUNK) + os.urandom(CHUNK)[: CHUNK // 2]
    data += data[:CHUNK]  # a repeated chunk: the same leaf twice under the root
    root, blocks = _import(data)
    order = [cid for cid, _ in dag_blocks(blocks.__getitem__, [root])]
    assert order[0] == root and root.codec == DAG_PB
    assert order[1:] == list(dict.fromkeys(links_of(root, blocks[root])))  # leaves in order, the repeat once
    assert len(order) == len(set(order)) == len(blocks)


def test_round_trip_fed_in_ragged_pieces() -> None:
    root, blocks = _import(os.urandom(2 * CHUNK + 5))
    car = b"".join(car_sections(blocks.__getitem__, [root]))
    assert car == b"".join(car_sections(blocks.__getitem__, [root]))  # deterministic
    decoder = CarDecoder()
    cuts = [0]
    for size in itertools.cycle((1, 2, 3, 40_000)):  # pieces that split varints, CIDs and blocks
        if cuts[-1] >= len(car):
            break
        cuts.append(cuts[-1] + size)
    got = [block for start, end in itertools.pairwise(cuts) for block in decoder.feed(car[start:end])]
    assert decoder.finish() == [root] and decoder.blocks == len(blocks)
    assert {b.cid: b.data for b in got} == blocks


def _car(roots: list[CID], blocks: list[Block]) -> bytes:
    return encode_header(roots) + b"".join(encode_block(b.cid, b.data) for b in blocks)


def _section(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


GOOD = Block(CID.of(RAW, b"x"), b"x")


BAD_INPUTS = [
    (b"", "empty input"),
    (_section(b"\xff\xff"), "not CBOR"),
    (_section(cbor2.dumps({"roots": [], "version": 1})), "list of 1 to"),
    (_section(cbor2.dumps({"roots": [cbor2.CBORTag(42, b"\x00" + GOOD.cid.to_bytes())], "version": 2})), "version 2"),
    (_section(cbor2.dumps({"roots": [GOOD.cid.to_bytes()], "version": 1})), "not a CID (tag 42)"),
    (_section(cbor2.dumps([1])), "exactly 'roots' and 'version'"),
    (encode_header([GOOD.cid]) + encode_block(GOOD.cid, b"y"), "does not match"),
    (encode_header([GOOD.cid]) + encode_block(GOOD.cid, b"x")[:-1], "ends inside a section"),
    (encode_header([GOOD.cid]) + _section(b"\x12\x20" + hashlib.sha256(b"x").digest() + b"x"), "CIDv0"),
    (encode_header([GOOD.cid]) + _section(b"\x01\x55\x13\x20" + bytes(32) + b"x"), "sha2-256"),
    (encode_header([GOOD.cid]) + _section(b"\x01\x29\x12\x20" + bytes(32) + b"x"), "unsupported multicodec"),
    (encode_header([GOOD.cid]) + b"\x00", "claims 0 bytes"),
    (encode_header([GOOD.cid]) + encode_varint(64 << 20), "claims 67108864 bytes"),
    (b"\xff" * 12, "not a valid varint"),
]


@pytest.mark.parametrize(("data", "message"), BAD_INPUTS, ids=[message for _, message in BAD_INPUTS])
def test_bad_input_is_a_car_error_saying_what(data: bytes, message: str) -> None:
    decoder = CarDecoder()
    with pytest.raises(CarError, match=re.escape(message)):
        decoder.feed(data)
        decoder.finish()


def test_a_car_may_carry_several_roots() -> None:
    first, second = Block(CID.of(RAW, b"one"), b"one"), Block(CID.of(RAW, b"two"), b"two")
    decoder = CarDecoder()
    assert [b.cid for b in decoder.feed(_car([first.cid, second.cid], [first, second]))] == [first.cid, second.cid]
    assert decoder.finish() == [first.cid, second.cid]
