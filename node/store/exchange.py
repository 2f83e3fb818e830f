"""Block exchange on the node's libp2p host: `/ehrnet/blocks/1.0.0` served from the blockstore, and files
fetched from the providers the DHT names (docs/STORAGE.md §4).

Memory stays bounded on both sides whatever the file size: a request names at most 64 blocks and an answer
carries at most 8 MiB, the server builds at most `MAX_CONCURRENT_SERVES` answers at a time, and the fetching
side walks the DAG a window of 32 blocks at a time (`storage.fetch.BlockFetcher`), writing each window to its
own store's packs before asking for the next and committing the file once at the end. The consumer of
`fetch_remote` pulls, so a slow HTTP client slows the fetch instead of filling memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

from node.p2p.bridge import P2PError, P2PHost, RequestError
from node.store.dht import LibP2PDht
from storage.address import CID
from storage.dht.keyspace import Contact
from storage.errors import BlockNotFoundError, ProtocolError, StorageError
from storage.exchange import (
    MAX_CIDS_PER_REQUEST,
    MAX_MESSAGE_BYTES,
    PROTOCOL_ID,
    Blocks,
    GetBlocks,
    PeerScores,
    decode_blocks,
    decode_get_blocks,
    encode_blocks,
    encode_get_blocks,
    serve_get_blocks,
)
from storage.fetch import BlockFetcher, BlockSink
from storage.importer import Block
from storage.objects import ObjectStore

log = logging.getLogger(__name__)

MAX_CONCURRENT_SERVES = 4  # × 8 MiB answers: the most a node's block server holds in memory at once
MAX_REQUEST_BYTES = MAX_CIDS_PER_REQUEST * 64 + 64
REQUEST_TIMEOUT_S = 30.0


class LibP2PBlockExchange:
    def __init__(self, host: P2PHost, objects: ObjectStore, dht: LibP2PDht) -> None:
        self.host = host
        self.objects = objects
        self.dht = dht
        # A peer caught sending bad data stays dropped for the process's life; timeouts only cost within a fetch
        # (a holder that was restarted must be usable again).
        self.dropped: set[bytes] = set()
        self._serving = asyncio.Semaphore(MAX_CONCURRENT_SERVES)

    def start(self) -> None:
        self.host.set_request_handler(PROTOCOL_ID, self._serve, max_request_bytes=MAX_REQUEST_BYTES)

    async def _serve(self, sender: str, data: bytes) -> bytes:
        try:
            request = decode_get_blocks(data)
        except StorageError as exc:
            raise RequestError(f"refused block request from {sender}: {exc}") from exc
        async with self._serving:
            answer = await asyncio.to_thread(serve_get_blocks, request, self.objects.blocks.get)
            return encode_blocks(answer)

    async def request_blocks(self, peer: Contact, ask: GetBlocks) -> Blocks:
        """One GET_BLOCKS exchange (the `BlockFetcher` transport); raises `ConnectionError` on transport failure
        and `ProtocolError` on an answer that does not decode."""
        try:
            peer_id = await self.dht.ensure_connected(peer)
            answer = await self.host.request(
                peer_id, PROTOCOL_ID, encode_get_blocks(ask), REQUEST_TIMEOUT_S, MAX_MESSAGE_BYTES
            )
        except P2PError as exc:
            raise ConnectionError(str(exc)) from exc
        return decode_blocks(answer)

    async def _keep(self, blocks: list[Block]) -> None:
        # Verified by the fetcher already; kept as an unpinned cache (GC reclaims it unless someone pins it).
        await asyncio.to_thread(self.objects.blocks.put_many, blocks, True)

    def fetcher(self, sink: BlockSink | None = None) -> BlockFetcher:
        scores = PeerScores()
        for peer_id in self.dropped:
            scores.misbehaved(peer_id, ProtocolError("dropped earlier for bad data"))
        return BlockFetcher(self.request_blocks, scores=scores, sink=sink or self._keep)

    async def fetch_remote(self, root: CID, hints: Sequence[Contact] = (), lookup: bool = True) -> AsyncIterator[bytes]:
        """The file under `root` from its providers (plus `hints`; only `hints` without `lookup`), streamed in
        order, every block verified and kept in the local store."""
        me = self.dht.local.peer_id
        providers = await self.dht.find_providers(root) if lookup else []
        found = {p.peer_id: p for p in (*hints, *providers) if p.peer_id != me}
        usable = [p for p in found.values() if p.peer_id not in self.dropped]
        if not usable:
            raise BlockNotFoundError(f"no reachable provider of {root} is known")
        # One writer for the whole file: each window goes to disk as it arrives (memory stays bounded) and one
        # commit at the end makes it durable and indexed — root included — in one transaction, so `has(root)`
        # keeps meaning "the whole file is here" (the HTTP route serves locally on it), and a fetch cut short by
        # its reader leaves nothing half-indexed. One sync per file instead of one per window.
        writer = self.objects.blocks.writer()

        with self.objects.protected() as fetched:

            async def keep(blocks: list[Block]) -> None:
                fetched.update(b.cid for b in blocks)  # live for GC before they are stored
                await asyncio.to_thread(writer.write, [(b.cid, b.data) for b in blocks])

            fetcher = self.fetcher(keep)
            try:
                async for piece in fetcher.cat(root, usable):
                    yield piece
                await asyncio.to_thread(writer.commit)
            finally:
                writer.abort()  # a no-op after the commit
                self.dropped |= fetcher.scores.misbehaving()

    async def fetch_all(self, root: CID, hints: Sequence[Contact] = ()) -> int:
        """Make the whole DAG under `root` local; returns the bytes fetched (0 if it was here already). Call
        `pin` right after, with no await in between, so no GC can slip in."""
        if self.objects.has(root):  # a root is stored only with (after) everything under it
            return 0
        if hints:
            # A replica is asked for by a holder: fetch from it straight away (no DHT lookup on the path that an
            # add waits for); the providers the DHT knows are the fallback.
            try:
                return await self._drain(self.fetch_remote(root, hints, lookup=False))
            except (StorageError, ConnectionError, TimeoutError) as exc:
                log.info("fetching %s from %d hinted peer(s) failed (%s); asking the DHT", root, len(hints), exc)
        return await self._drain(self.fetch_remote(root, hints))

    @staticmethod
    async def _drain(pieces: AsyncIterator[bytes]) -> int:
        size = 0
        async for piece in pieces:
            size += len(piece)
        return size
