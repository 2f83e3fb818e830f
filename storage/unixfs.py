"""UnixFS `Data` messages, the payload of a file's dag-pb nodes (UnixFS spec, "Data Format").

    message Data { required DataType Type = 1; optional bytes Data = 2; optional uint64 filesize = 3;
                   repeated uint64 blocksizes = 4; ... }     DataType: Raw=0 Directory=1 File=2 ...

It is proto2, so `blocksizes` is *unpacked*: one (field 4, varint) pair per child, never one packed run. go-unixfs
sets `filesize` on every File node (to 0 before any child is added) and omits `Data` on interior nodes, which
gives interior nodes the bytes 08 02 18 <filesize> (20 <blocksize>)*. Only File nodes are understood here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.dagpb import bytes_field, read_field, varint_field
from storage.errors import MalformedNodeError

TYPE_RAW = 0
TYPE_FILE = 2


@dataclass(frozen=True, slots=True)
class FileData:
    """A UnixFS File node's metadata: total file size under it, each child's file size, and inline bytes."""

    filesize: int
    blocksizes: tuple[int, ...] = ()
    inline: bytes | None = None
    kind: int = TYPE_FILE

    def encode(self) -> bytes:
        parts = [varint_field(1, self.kind)]
        if self.inline is not None:
            parts.append(bytes_field(2, self.inline))
        parts.append(varint_field(3, self.filesize))
        parts.extend(varint_field(4, size) for size in self.blocksizes)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> FileData:
        pos = 0
        kind: int | None = None
        inline: bytes | None = None
        filesize: int | None = None
        blocksizes: list[int] = []
        while pos < len(data):
            number, value, pos = read_field(data, pos)
            if number == 1 and isinstance(value, int):
                kind = value
            elif number == 2 and isinstance(value, bytes):
                inline = value
            elif number == 3 and isinstance(value, int):
                filesize = value
            elif number == 4 and isinstance(value, int):
                blocksizes.append(value)
            else:
                raise MalformedNodeError(f"unsupported UnixFS field {number}")
        if kind not in (TYPE_FILE, TYPE_RAW):
            raise MalformedNodeError(f"UnixFS node type {kind} is not a file")
        inline_size = len(inline) if inline is not None else 0
        if filesize is None:
            filesize = inline_size + sum(blocksizes)
        if filesize != inline_size + sum(blocksizes):
            raise MalformedNodeError("UnixFS filesize disagrees with its data and blocksizes")
        return cls(filesize, tuple(blocksizes), inline, kind)


def file_node_data(blocksizes: Sequence[int]) -> bytes:
    """The Data of an interior File node over children of these file sizes."""
    return FileData(sum(blocksizes), tuple(blocksizes)).encode()
