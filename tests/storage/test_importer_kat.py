"""Known-answer tests: root CIDs must equal what `ipfs add --cid-version=1 --raw-leaves --chunker=size-262144`
prints for the same bytes.

How the expected values are derived (no IPFS binary is available offline):
- the empty file and any single-chunk file are a raw leaf, so the CID is CIDv1(raw, sha256(bytes)); the empty
  file's CID bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku is the published one;
- multi-chunk roots are built here *by hand* from the dag-pb and UnixFS specs (protobuf bytes written field by
  field in this file, not with the production encoder), then hashed; the literal CID strings pin the result;
- our UnixFS/PBNode byte layout is cross-checked against two CIDv0 values every IPFS user has seen:
  the empty file QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH and "hello world\\n"
  QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o (both `ipfs add` with default, non-raw leaves);
- the multi-level layout is compared with a transcription of go-unixfs's top-down balanced builder
  (`Layout`/`fillNodeRec`) in `test_layout_model.py`.
"""

from __future__ import annotations

import hashlib

import multihash

from storage.address import CID
from storage.dagpb import encode_node
from storage.importer import CHUNK_SIZE, Importer, import_bytes
from storage.unixfs import FileData


def _uvarint(n: int) -> bytes:
    # Independent of storage.dagpb.encode_varint on purpose.
    groups = [n & 0x7F]
    n >>= 7
    while n:
        groups.append(n & 0x7F)
        n >>= 7
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


def _len_field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _uvarint(len(payload)) + payload


def _raw_cid_bytes(chunk: bytes) -> bytes:
    return b"\x01\x55\x12\x20" + hashlib.sha256(chunk).digest()


def _hand_root(children: list[tuple[bytes, int, int]]) -> bytes:
    """PBNode over (binary CID, tsize, filesize) children: Links (0x12) first, then Data (0x0a)."""
    # PBLink: Hash (0x0a), Name "" (12 00, always written by go-ipfs), Tsize (0x18).
    links = b"".join(_len_field(0x12, _len_field(0x0A, c) + b"\x12\x00\x18" + _uvarint(t)) for c, t, _ in children)
    unixfs = b"\x08\x02" + b"\x18" + _uvarint(sum(f for _, _, f in children))
    unixfs += b"".join(b"\x20" + _uvarint(f) for _, _, f in children)
    return links + _len_field(0x0A, unixfs)


def _dagpb_cid(block: bytes) -> str:
    return str(CID(0x70, hashlib.sha256(block).digest()))


def test_empty_file_is_the_published_raw_cid() -> None:
    root, blocks = import_bytes(b"")
    assert str(root) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert [b.data for b in blocks] == [b""]


def test_one_byte() -> None:
    root, blocks = import_bytes(b"a")
    assert root == CID(0x55, hashlib.sha256(b"a").digest())
    assert str(root) == "bafkreigks6arfsq3xxfpvqrrwonchxcnu6do76auprhhfomao6c273sixm"
    assert len(blocks) == 1


def test_exactly_one_chunk_is_a_single_raw_leaf() -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256)
    root, blocks = import_bytes(data)
    assert root.codec == 0x55 and root.digest == hashlib.sha256(data).digest()
    assert str(root) == "bafkreibdci4uxwmvixm54ey4etx3paphmwwbv3beh4xnsndvs6tzhjav5e"
    assert len(blocks) == 1


def test_one_chunk_plus_one_byte_has_a_dagpb_root_over_two_leaves() -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256) + b"\x07"
    first, second = data[:CHUNK_SIZE], data[CHUNK_SIZE:]
    expected = _hand_root([(_raw_cid_bytes(first), CHUNK_SIZE, CHUNK_SIZE), (_raw_cid_bytes(second), 1, 1)])
    root, blocks = import_bytes(data)
    assert blocks[-1].data == expected
    assert str(root) == _dagpb_cid(expected)
    assert str(root) == "bafybeicgmnt77x5slcaqwukbtlsz3xkt66xqw3gwcnh3n35k6a6qm53i5q"


def _chunk(i: int) -> bytes:
    return i.to_bytes(4, "big") * (CHUNK_SIZE // 4)


def test_more_than_174_leaves_builds_two_levels() -> None:
    leaves = [_chunk(i) for i in range(174)] + [b"tail"]
    importer = Importer()
    blocks = []
    for leaf in leaves:
        blocks += importer.feed(leaf)
    root, rest = importer.finish()
    blocks += rest
    # Level 1: a full node over 174 leaves, and a one-link node over the tail (all leaves at the same depth).
    full = _hand_root([(_raw_cid_bytes(x), CHUNK_SIZE, CHUNK_SIZE) for x in leaves[:174]])
    tail = _hand_root([(_raw_cid_bytes(b"tail"), 4, 4)])
    full_cid = b"\x01\x70\x12\x20" + hashlib.sha256(full).digest()
    tail_cid = b"\x01\x70\x12\x20" + hashlib.sha256(tail).digest()
    full_tsize = len(full) + 174 * CHUNK_SIZE
    expected = _hand_root([(full_cid, full_tsize, 174 * CHUNK_SIZE), (tail_cid, len(tail) + 4, 4)])
    assert str(root) == _dagpb_cid(expected)
    assert blocks[-1].data == expected
    assert str(root) == "bafybeifdsdal77y3pxroxw4qb44uxtlobojr2c3kjcz72viblwzsjtqdrq"
    assert len(blocks) == 175 + 3


def test_unixfs_encoding_reproduces_well_known_cidv0_values() -> None:
    def v0(block: bytes) -> str:
        text: str = multihash.to_b58_string(multihash.encode(hashlib.sha256(block).digest(), "sha2-256"))
        return text

    assert v0(encode_node([], FileData(0).encode())) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    hello = FileData(12, inline=b"hello world\n").encode()
    assert v0(encode_node([], hello)) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_feeding_in_odd_pieces_gives_the_same_root() -> None:
    data = bytes(i % 251 for i in range(3 * CHUNK_SIZE + 12345))
    whole, _ = import_bytes(data)
    importer = Importer()
    for start in range(0, len(data), 100_003):
        importer.feed(data[start : start + 100_003])
    root, _ = importer.finish()
    assert root == whole


def test_feed_views_cuts_leaves_out_of_immutable_pieces_without_copying() -> None:
    data = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 5)
    importer = Importer()
    leaves = importer.feed_views(data)
    assert len(leaves) == 3 and all(isinstance(chunk, memoryview) and chunk.obj is data for _, chunk in leaves)
    root, rest = importer.finish()
    assert root == import_bytes(data)[0] and all(isinstance(block.data, bytes) for block in rest)
    # A bytearray may be reused by its owner after the call: its leaves must be copies.
    mutable = bytearray(data)
    copied = Importer().feed_views(mutable)
    mutable[:] = bytes(len(mutable))
    assert [bytes(chunk) for _, chunk in copied] == [bytes(chunk) for _, chunk in leaves]
