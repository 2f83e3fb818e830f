from __future__ import annotations

import pytest

from storage.address import CID, DAG_PB, RAW
from storage.dag import iter_file, links_of
from storage.dagpb import Link, PBNode, decode_varint, encode_node, encode_varint
from storage.errors import InvalidCidError, MalformedNodeError
from storage.importer import import_bytes
from storage.unixfs import FileData, file_node_data


def test_varint_roundtrip_and_rejects_non_minimal() -> None:
    for value in (0, 1, 127, 128, 300, 2**63):
        assert decode_varint(encode_varint(value), 0) == (value, len(encode_varint(value)))
    with pytest.raises(MalformedNodeError):
        decode_varint(b"\x80\x00", 0)
    with pytest.raises(MalformedNodeError):
        decode_varint(b"\x80", 0)


def test_pbnode_roundtrip_and_strict_order() -> None:
    leaf = CID.of(RAW, b"x")
    block = encode_node([Link(leaf, 1)], file_node_data([1]))
    node = PBNode.decode(block)
    assert node.links == (Link(leaf, 1),) and FileData.decode(node.data or b"").filesize == 1
    data_first = block[-6:] + block[:-6]  # Data field moved before the link
    with pytest.raises(MalformedNodeError):
        PBNode.decode(data_first)
    with pytest.raises(MalformedNodeError):
        PBNode.decode(b"\x1a\x00")  # unknown field 3


def test_unixfs_rejects_inconsistent_sizes() -> None:
    with pytest.raises(MalformedNodeError):
        FileData.decode(FileData(10, (3, 4)).encode())


def test_cid_text_roundtrip_and_errors() -> None:
    cid = CID.of(DAG_PB, b"node")
    assert CID.parse(str(cid)) == cid and CID.from_bytes(cid.to_bytes()) == cid
    assert str(cid).startswith("bafy")
    for bad in ("", "hello", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"):
        with pytest.raises(InvalidCidError):
            CID.parse(bad)
    with pytest.raises(InvalidCidError):
        CID(RAW, b"short")


def test_iter_file_refuses_leaf_size_that_contradicts_parent() -> None:
    leaf = CID.of(RAW, b"abc")
    liar = encode_node([Link(leaf, 3)], file_node_data([5]))
    blocks = {leaf: b"abc", CID.of(DAG_PB, liar): liar}
    with pytest.raises(MalformedNodeError):
        list(iter_file(blocks.__getitem__, CID.of(DAG_PB, liar)))


def test_links_of_lists_children_in_order() -> None:
    root, blocks = import_bytes(b"abcdefgh", chunk_size=3)
    by_cid = {b.cid: b.data for b in blocks}
    assert [by_cid[c] for c in links_of(root, by_cid[root])] == [b"abc", b"def", b"gh"]
    assert links_of(CID.of(RAW, b"abc"), b"abc") == []
