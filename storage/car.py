"""CAR v1 (Content Addressable aRchive): the IPLD format for moving a DAG's blocks as one file.

Spec: https://ipld.io/specs/transport/car/carv1/ — a file is a header section, then one section per block:

    section = varint(length of the rest) ‖ rest
    header  = DAG-CBOR {"roots": [CID…], "version": 1}   (a CID in DAG-CBOR is tag 42 over 0x00 ‖ binary CID)
    block   = binary CID ‖ block bytes

Export (`car_sections`) writes the roots' DAGs depth-first, pre-order, links in their order, each block once:
the order `ipfs dag export` uses, so the same DAG always gives the same bytes and a reader can stream the file
as it arrives. Import (`CarDecoder`) is sans-IO: `feed` bytes as they come, get back the verified blocks; every
block is hashed against its CID before anyone sees it, and a malformed file raises `CarError` naming what is
wrong and where. Both are pure; the HTTP routes (node/store/dag_routes.py) do the IO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cbor2

from storage.address import CID
from storage.dag import links_of
from storage.errors import CarError, StorageError

CID_TAG = 42  # DAG-CBOR's tag for a link; its bytes start with the 0x00 "identity" multibase prefix
MAX_HEADER_BYTES = 1 << 20
MAX_BLOCK_BYTES = 2 << 20  # a UnixFS leaf is 256 KiB and an interior node far less; anything beyond is hostile
MAX_ROOTS = 1024
MAX_VARINT_BYTES = 9


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats' unsigned-varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_header(roots: Iterable[CID]) -> bytes:
    """The header section. Keys in DAG-CBOR order (shorter first: "roots" before "version")."""
    body = cbor2.dumps({"roots": [cbor2.CBORTag(CID_TAG, b"\x00" + root.to_bytes()) for root in roots], "version": 1})
    return encode_varint(len(body)) + body


def encode_block(cid: CID, data: bytes) -> bytes:
    raw = cid.to_bytes()
    return encode_varint(len(raw) + len(data)) + raw + data


def dag_blocks(get_block: Callable[[CID], bytes], roots: Iterable[CID]) -> Iterator[tuple[CID, bytes]]:
    """Every block under `roots`, depth-first pre-order, links in order, each block once (`get_block` must
    verify). Memory: the set of CIDs seen and one pending-links stack, never the blocks themselves."""
    seen: set[CID] = set()
    for root in roots:
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            block = get_block(cid)
            yield cid, block
            stack.extend(reversed(links_of(cid, block)))


def car_sections(get_block: Callable[[CID], bytes], roots: list[CID]) -> Iterator[bytes]:
    """The CAR file of `roots`, one section at a time (header first)."""
    yield encode_header(roots)
    for cid, block in dag_blocks(get_block, roots):
        yield encode_block(cid, block)


@dataclass(frozen=True, slots=True)
class CarBlock:
    cid: CID
    data: bytes


def _decode_header(body: bytes) -> list[CID]:
    try:
        header = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise CarError(f"CAR header is not CBOR: {exc}") from exc
    if not isinstance(header, dict) or set(header) != {"roots", "version"}:
        raise CarError("CAR header must be a map with exactly 'roots' and 'version'")
    if header["version"] != 1:
        raise CarError(f"CAR version {header['version']!r} is not served; only version 1 is")
    roots = header["roots"]
    if not isinstance(roots, list) or not 1 <= len(roots) <= MAX_ROOTS:
        raise CarError(f"CAR header 'roots' must be a list of 1 to {MAX_ROOTS} CIDs")
    parsed = []
    for index, root in enumerate(roots):
        if not isinstance(root, cbor2.CBORTag) or root.tag != CID_TAG or not isinstance(root.value, bytes):
            raise CarError(f"CAR header roots[{index}] is not a CID (tag 42)")
        if root.value[:1] != b"\x00":
            raise CarError(f"CAR header roots[{index}] lacks the 0x00 multibase prefix")
        parsed.append(CID.from_bytes(root.value[1:]))
    return parsed


def _split_cid(section: bytes, offset: int) -> tuple[CID, bytes]:
    """A block section's CID and data. The CIDs this store speaks are v1 with a one-byte codec varint and a
    34-byte sha2-256 multihash; anything else (CIDv0, other hashes or codecs) is refused by name."""
    if section[:2] == b"\x12\x20":
        raise CarError(f"block at byte {offset}: CIDv0 is not supported (export with CIDv1)")
    if len(section) < 36 or section[0] != 1:
        raise CarError(f"block at byte {offset}: not a CIDv1")
    if section[2:4] != b"\x12\x20":
        raise CarError(f"block at byte {offset}: only sha2-256 multihashes are supported")
    try:
        cid = CID(section[1], bytes(section[4:36]))
    except StorageError as exc:
        raise CarError(f"block at byte {offset}: {exc}") from exc
    return cid, section[36:]


class CarDecoder:
    """Incremental CAR v1 reader: `feed(data)` returns the blocks completed by `data`, each verified against its
    CID; `roots` is known once the header is in; `finish()` checks the file did not end mid-section."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # of the buffer's first byte in the whole file
        self.roots: list[CID] | None = None
        self.blocks = 0

    def feed(self, data: bytes) -> list[CarBlock]:
        self._buffer += data
        out: list[CarBlock] = []
        while True:
            section = self._next_section()
            if section is None:
                return out
            start, body = section
            if self.roots is None:
                self.roots = _decode_header(body)
                continue
            cid, block = _split_cid(body, start)
            try:
                cid.verify(block)
            except StorageError as exc:
                raise CarError(f"block {cid} at byte {start}: {exc}") from exc
            self.blocks += 1
            out.append(CarBlock(cid, block))

    def _next_section(self) -> tuple[int, bytes] | None:
        length, used = 0, 0
        for used, byte in enumerate(self._buffer[:MAX_VARINT_BYTES], start=1):
            length |= (byte & 0x7F) << (7 * (used - 1))
            if not byte & 0x80:
                break
        else:
            if len(self._buffer) >= MAX_VARINT_BYTES:
                raise CarError(f"section length at byte {self._offset} is not a valid varint")
            return None
        limit = MAX_HEADER_BYTES if self.roots is None else MAX_BLOCK_BYTES + 64
        if length == 0 or length > limit:
            what = "header" if self.roots is None else "block section"
            raise CarError(f"{what} at byte {self._offset} claims {length} bytes (allowed 1 to {limit})")
        if len(self._buffer) < used + length:
            return None
        start = self._offset
        body = bytes(self._buffer[used : used + length])
        del self._buffer[: used + length]
        self._offset += used + length
        return start, body

    def finish(self) -> list[CID]:
        """The roots, once the whole file was fed; raises if it was empty or ended inside a section."""
        if self._buffer:
            raise CarError(f"CAR ends inside a section at byte {self._offset} ({len(self._buffer)} bytes left over)")
        if self.roots is None:
            raise CarError("empty input: no CAR header")
        return self.roots
