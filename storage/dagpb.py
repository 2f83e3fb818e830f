"""dag-pb nodes (multicodec 0x70), encoded byte for byte as the IPLD dag-pb spec and go-merkledag write them.

The protobuf schema (spec "Serial Format"):

    message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
    message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }

The spec fixes the serialisation order: all Links first (field 2), then Data (field 1), even though Data has
the lower field number; inside a link Hash, Name, Tsize in that order. go-ipfs/kubo always writes the Name
field of a file's links, as the empty string (bytes 12 00), and that is part of the hashed bytes, so we do too.
Decoding is strict (spec "Decoding": fields in that order, no unknown fields, no duplicates), so a node has
exactly one encoding and a peer cannot make two blocks that mean the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.address import CID
from storage.errors import InvalidCidError, MalformedNodeError

_WIRE_VARINT = 0
_WIRE_BYTES = 2


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 as protobuf writes it."""
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); rejects truncated, over-long and non-minimal varints."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(data):
            raise MalformedNodeError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift >= 64:
            raise MalformedNodeError("varint longer than 64 bits")
    if pos - start > 1 and data[pos - 1] == 0:
        raise MalformedNodeError("non-minimal varint")
    return value, pos


def field_key(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def bytes_field(number: int, payload: bytes) -> bytes:
    return field_key(number, _WIRE_BYTES) + encode_varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return field_key(number, _WIRE_VARINT) + encode_varint(value)


def read_field(data: bytes, pos: int) -> tuple[int, int | bytes, int]:
    """Read one field at `pos`: (field number, varint value or bytes payload, next position)."""
    key, pos = decode_varint(data, pos)
    number, wire_type = key >> 3, key & 7
    if wire_type == _WIRE_VARINT:
        value, pos = decode_varint(data, pos)
        return number, value, pos
    if wire_type == _WIRE_BYTES:
        length, pos = decode_varint(data, pos)
        if pos + length > len(data):
            raise MalformedNodeError("length-delimited field runs past the end")
        return number, data[pos : pos + length], pos + length
    raise MalformedNodeError(f"unexpected protobuf wire type {wire_type}")


@dataclass(frozen=True, slots=True)
class Link:
    """A PBLink: the child's CID, its name ("" in files) and Tsize, the cumulative size of the child's DAG."""

    cid: CID
    tsize: int
    name: str = ""

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        return bytes_field(1, self.cid.to_bytes()) + bytes_field(2, name) + varint_field(3, self.tsize)

    @classmethod
    def decode(cls, data: bytes) -> Link:
        pos = 0
        seen: list[int] = []
        cid: CID | None = None
        name = ""
        tsize = 0
        while pos < len(data):
            number, value, pos = read_field(data, pos)
            if seen and number <= seen[-1]:
                raise MalformedNodeError("PBLink fields out of order or repeated")
            seen.append(number)
            if number == 1 and isinstance(value, bytes):
                try:
                    cid = CID.from_bytes(value)
                except InvalidCidError as exc:
                    raise MalformedNodeError(f"bad link hash: {exc}") from exc
            elif number == 2 and isinstance(value, bytes):
                try:
                    name = value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise MalformedNodeError("link name is not UTF-8") from exc
            elif number == 3 and isinstance(value, int):
                tsize = value
            else:
                raise MalformedNodeError(f"unexpected PBLink field {number}")
        if cid is None:
            raise MalformedNodeError("PBLink without Hash")
        return cls(cid, tsize, name)


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[Link, ...]
    data: bytes | None

    def encode(self) -> bytes:
        parts = [bytes_field(2, link.encode()) for link in self.links]
        if self.data is not None:
            parts.append(bytes_field(1, self.data))
        return b"".join(parts)

    @classmethod
    def decode(cls, block: bytes) -> PBNode:
        pos = 0
        links: list[Link] = []
        data: bytes | None = None
        while pos < len(block):
            number, value, pos = read_field(block, pos)
            if number == 2 and isinstance(value, bytes):
                if data is not None:
                    raise MalformedNodeError("PBNode Links after Data")
                links.append(Link.decode(value))
            elif number == 1 and isinstance(value, bytes):
                if data is not None:
                    raise MalformedNodeError("PBNode Data repeated")
                data = value
            else:
                raise MalformedNodeError(f"unexpected PBNode field {number}")
        return cls(tuple(links), data)


def encode_node(links: Sequence[Link], data: bytes | None) -> bytes:
    return PBNode(tuple(links), data).encode()
