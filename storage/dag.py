"""Walking a stored UnixFS DAG: the links of a block and the file bytes under a root, in order.

Both walks are generic over a block getter, so the same code reads the local store or blocks fetched from
peers. The file walk is depth-first with an explicit stack of child iterators: memory is bounded by the tree's
depth times 174 links, never by the file size. It checks each child's file size against the parent's
`blocksizes` entry, so a well-hashed but inconsistent DAG is refused instead of streamed wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from storage.address import CID, DAG_PB, RAW
from storage.dagpb import PBNode
from storage.errors import MalformedNodeError
from storage.unixfs import FileData

MAX_DEPTH = 32  # 174**32 leaves is far beyond any file; a deeper DAG is hostile


def links_of(cid: CID, block: bytes) -> list[CID]:
    """CIDs a block points to (raw and dag-cbor blocks have none in this store)."""
    if cid.codec != DAG_PB:
        return []
    return [link.cid for link in PBNode.decode(block).links]


def decode_file_node(block: bytes) -> tuple[PBNode, FileData]:
    node = PBNode.decode(block)
    if node.data is None:
        raise MalformedNodeError("dag-pb node without UnixFS data")
    meta = FileData.decode(node.data)
    if len(meta.blocksizes) != len(node.links):
        raise MalformedNodeError("UnixFS blocksizes do not match the node's links")
    return node, meta


def iter_file(get_block: Callable[[CID], bytes], root: CID) -> Iterator[bytes]:
    """Yield the file's bytes in order; `get_block` must return verified bytes or raise."""
    # Each stack entry: iterator over (child CID, expected file size or None for the root).
    stack: list[Iterator[tuple[CID, int | None]]] = [iter([(root, None)])]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        cid, expected = entry
        block = get_block(cid)
        if cid.codec == RAW:
            if expected is not None and expected != len(block):
                raise MalformedNodeError(f"leaf {cid} holds {len(block)} bytes, parent says {expected}")
            yield block
            continue
        if cid.codec != DAG_PB:
            raise MalformedNodeError(f"{cid} is not a UnixFS file block")
        node, meta = decode_file_node(block)
        if expected is not None and expected != meta.filesize:
            raise MalformedNodeError(f"node {cid} covers {meta.filesize} bytes, parent says {expected}")
        if meta.inline:
            yield meta.inline
        if node.links:
            if len(stack) > MAX_DEPTH:
                raise MalformedNodeError("DAG deeper than any file this store accepts")
            stack.append(zip((link.cid for link in node.links), meta.blocksizes, strict=True))
