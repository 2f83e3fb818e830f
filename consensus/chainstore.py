"""The node's persistent chain: final blocks, their commits and receipts, the tx index and the state, in LMDB.

Crash safety: `commit_block` writes a final block, its commit, receipts, tx index entries, the state's flat
values and changed tree nodes, and the new head in ONE LMDB write transaction. LMDB commits by a single meta-page
switch after the data is synced, so a SIGKILL at any instant leaves either the old head or the new one, never a
mix: a SIGKILL at any moment loses nothing that was final. The state tree is stored in place by
position, so a restarted node opens its state root directly, without recomputing anything.

The map starts small and doubles whenever LMDB reports it full; running out of disk raises `DiskFullError`
after LMDB aborted the transaction, so the store on disk is unchanged and the node can stop cleanly.
"""

from __future__ import annotations

import errno
import resource
import shutil
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from consensus import event_index, smt
from consensus.block import Block, Commit, Header, decode_block, verify_commit
from consensus.errors import DiskFullError, StoreError, StoreMismatchError
from consensus.event_index import ContractEvent, EventPosition
from consensus.execute import BlockResult, Receipt, Registry, apply_block
from consensus.genesis import Genesis
from consensus.genesis_block import build_genesis
from consensus.state import StateChanges, validators_at
from consensus.votes import ValidatorSet
from primitives import codec

FORMAT_VERSION = b"1"
EVENT_INDEX_KEY = b"event_index"  # present once every final block's events are in the "events" db
_DBS = ("meta", "blocks", "commits", "hashes", "txs", "receipts", "values", "nodes", "events")
_DISK_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# The top levels of the state tree are on every write's path: keep them decoded in memory (at most 2^14 nodes).
TOP_CACHE_LIMIT = 1 << 14


def _height_key(height: int) -> bytes:
    return height.to_bytes(8, "big")  # big-endian keeps LMDB's order = height order


class StoreReader:
    """A consistent read view (one LMDB read transaction): a `StateReader` plus chain lookups."""

    def __init__(self, store: ChainStore, txn: lmdb.Transaction) -> None:
        self._store = store
        self._txn = txn
        self._values = store._db["values"]
        self._nodes = store._db["nodes"]

    def get_value(self, key: bytes) -> bytes | None:
        raw = self._txn.get(key, db=self._values)
        return None if raw is None else bytes(raw)

    def get_node(self, pos: int) -> smt.Node | None:
        cache = self._store._top_nodes
        if pos < TOP_CACHE_LIMIT and pos in cache:
            return cache[pos]
        raw = self._txn.get(smt.position_key(pos), db=self._nodes)
        node = None if raw is None else smt.decode_node(bytes(raw))
        if pos < TOP_CACHE_LIMIT:
            cache[pos] = node
        return node

    def prove(self, key: bytes) -> tuple[bytes | None, smt.Proof]:
        """The value under `key` (None if absent) and its proof against the head's state root."""
        return self.get_value(key), smt.prove(self, key)


class ChainStore:
    def __init__(self, path: Path, genesis: Genesis, *, initial_map_size: int = 64 * 1024 * 1024) -> None:
        """Open (or create from `genesis`) the chain in directory `path`.

        Raises StoreMismatchError if the directory holds another chain (a different genesis hash).
        """
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.genesis = genesis
        self._env = lmdb.open(
            str(self.path), map_size=initial_map_size, max_dbs=len(_DBS), subdir=True, sync=True, metasync=True
        )
        self._db = {name: self._env.open_db(name.encode()) for name in _DBS}
        self._top_nodes: dict[int, smt.Node | None] = {}  # mirrors committed LMDB content; see StoreReader
        genesis_hash = genesis.hash()
        with self._env.begin() as txn:
            stored = txn.get(b"genesis_hash", db=self._db["meta"])
        if stored is None:
            self._initialise(genesis)
        elif bytes(stored) != genesis_hash:
            self._env.close()
            raise StoreMismatchError(f"{self.path} holds chain with genesis {bytes(stored).hex()[:16]}, not ours")
        self._head = self._load_head()
        self._ensure_event_index()

    def _initialise(self, genesis: Genesis) -> None:
        block, changes = build_genesis(genesis)

        def write(txn: lmdb.Transaction) -> None:
            meta = self._db["meta"]
            txn.put(b"format", FORMAT_VERSION, db=meta)
            txn.put(b"chain_id", genesis.chain_id.encode(), db=meta)
            txn.put(b"genesis_hash", genesis.hash(), db=meta)
            txn.put(EVENT_INDEX_KEY, b"1", db=meta)
            self._put_block(txn, block, None, (), (), changes)

        self._write(write)

    def close(self) -> None:
        self._env.close()

    # --- reads -------------------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The last final height (0 = only genesis)."""
        return self._head.height

    @property
    def head(self) -> Header:
        return self._head

    @property
    def state_root(self) -> bytes:
        return self._head.state_root

    @contextmanager
    def reader(self) -> Iterator[StoreReader]:
        """A consistent view; close it (leave the block) before `commit_block`, which may resize the map."""
        with self._env.begin(buffers=False) as txn:
            yield StoreReader(self, txn)

    def get_value(self, key: bytes) -> bytes | None:
        with self.reader() as r:
            return r.get_value(key)

    def _get(self, db: str, key: bytes) -> bytes | None:
        with self._env.begin() as txn:
            raw = txn.get(key, db=self._db[db])
            return None if raw is None else bytes(raw)

    def get_block(self, height: int) -> Block | None:
        raw = self._get("blocks", _height_key(height))
        if raw is None:
            return None
        return self._decode(raw)

    def get_block_bytes(self, height: int) -> bytes | None:
        """The canonical block encoding, e.g. to serve block sync without re-encoding."""
        return self._get("blocks", _height_key(height))

    def get_header(self, height: int) -> Header | None:
        block = self.get_block(height)
        return None if block is None else block.header

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self._get("hashes", block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def get_commit(self, height: int) -> Commit | None:
        raw = self._get("commits", _height_key(height))
        return None if raw is None else Commit.from_value(codec.decode(raw))

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a final transaction."""
        raw = self._get("txs", tx_hash)
        return None if raw is None else (int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"))

    def get_receipts(self, height: int) -> list[Receipt]:
        with self._env.begin() as txn:
            return self._receipts_in(txn, height)

    def events(
        self,
        contract: bytes,
        name: str | None = None,
        patient: bytes | None = None,
        *,
        from_height: int = 0,
        to_height: int | None = None,
        before: EventPosition | None = None,
        limit: int = 100,
    ) -> tuple[list[tuple[EventPosition, bytes, ContractEvent]], EventPosition | None]:
        """A contract's events from the event index, newest first (reverse chain order): ((height, tx index,
        event index), tx hash, event) each, and — when the limit cut the answer — the position to pass as
        `before` for the next page (events strictly older than it)."""
        top = self.height if to_height is None else min(to_height, self.height)
        query = event_index.prefix(contract, name, patient)
        low = event_index.height_bound(query, from_height)
        high = event_index.height_bound(query, top + 1)
        if before is not None:
            high = min(high, query + event_index.position_bytes(*before))
        found: list[tuple[EventPosition, bytes, ContractEvent]] = []
        more: EventPosition | None = None
        with self._env.begin(db=self._db["events"]) as txn:
            receipts: tuple[int, list[Receipt]] = (-1, [])
            cursor = txn.cursor()
            # Walk backwards from the last key below `high`: newest first.
            present = cursor.prev() if cursor.set_range(high) else cursor.last()
            while present:
                key = bytes(cursor.key())
                if key < low or not key.startswith(query):
                    break
                position = event_index.position_of(key)
                if len(found) == limit:
                    more = found[-1][0]
                    break
                height, tx_index, index_in_tx = position
                if receipts[0] != height:
                    receipts = (height, self._receipts_in(txn, height))
                receipt = receipts[1][tx_index]
                event = dict(event_index.contract_events(receipt))[index_in_tx]
                if patient is None or event.patient == patient:
                    found.append((position, receipt.tx_hash, event))
                present = cursor.prev()
        return found, more

    def _receipts_in(self, txn: lmdb.Transaction, height: int) -> list[Receipt]:
        raw = txn.get(_height_key(height), db=self._db["receipts"])
        encodings = codec.decode(bytes(raw)) if raw is not None else []
        assert isinstance(encodings, list)
        return [Receipt.from_value(codec.decode(e)) for e in encodings if isinstance(e, bytes)]

    def _ensure_event_index(self) -> None:
        """Index the events of a store written before the index existed (once; the index is derived data)."""
        if self._get("meta", EVENT_INDEX_KEY) is not None:
            return

        def build(txn: lmdb.Transaction) -> None:
            for height in range(1, self.height + 1):
                for key in event_index.keys_for(height, self._receipts_in(txn, height)):
                    txn.put(key, b"", db=self._db["events"])
            txn.put(EVENT_INDEX_KEY, b"1", db=self._db["meta"])

        self._write(build)

    def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        location = self.tx_location(tx_hash)
        if location is None:
            return None
        receipts = self.get_receipts(location[0])
        return receipts[location[1]] if location[1] < len(receipts) else None

    def next_validators(self) -> ValidatorSet:
        """The validator set that must sign the next height (for consensus, `/status` and sync)."""
        with self.reader() as r:
            return validators_at(r.get_value, self.height + 1)

    # --- writes ------------------------------------------------------------------------------------------

    def import_block(
        self, block: Block, commit: Commit, registry: Registry, preverified: Container[bytes] = frozenset()
    ) -> BlockResult:
        """Verify and persist a final block received from a peer (catch-up sync): the commit must carry a quorum
        of the expected set, and re-execution must reproduce every root the header claims. Raises BlockError."""
        header = block.header
        verify_commit(
            commit,
            chain_id=header.chain_id,
            height=header.height,
            block_hash=header.hash,
            validators=self.next_validators(),
        )
        with self.reader() as reader:
            result = apply_block(
                reader, block, self._head, params=self.genesis.params, registry=registry, preverified=preverified
            )
        self.commit_block(block, commit, result)
        return result

    def commit_block(self, block: Block, commit: Commit, result: BlockResult) -> None:
        """Persist a final block with its commit and execution result, atomically.

        The caller has verified the commit (block.verify_commit) and executed the block on this store's state
        (execute.apply_block or build_block); this checks that the pieces belong together.
        """
        head = self._head
        if block.header.height != head.height + 1 or block.header.parent_hash != head.hash:
            raise StoreMismatchError(f"block {block.header.height} does not extend the stored head {head.height}")
        if commit.block_hash != block.hash or commit.height != block.header.height:
            raise StoreMismatchError("commit is not for this block")
        if result.changes.root != block.header.state_root:
            raise StoreMismatchError("execution result does not produce the block's state root")
        self._write(
            lambda txn: self._put_block(txn, block, commit, result.receipt_encodings, result.receipts, result.changes)
        )
        self._head = block.header
        for pos, node in result.changes.nodes.items():
            if pos < TOP_CACHE_LIMIT:
                self._top_nodes[pos] = node

    def _put_block(
        self,
        txn: lmdb.Transaction,
        block: Block,
        commit: Commit | None,
        receipts: tuple[bytes, ...],
        decoded: tuple[Receipt, ...],
        changes: StateChanges,
    ) -> None:
        db = self._db
        height = block.header.height
        key = _height_key(height)
        txn.put(key, block.encode(), db=db["blocks"])
        if commit is not None:
            txn.put(key, codec.encode(commit.to_value()), db=db["commits"])
        txn.put(key, codec.encode(list(receipts)), db=db["receipts"])
        for index_key in event_index.keys_for(height, decoded):
            txn.put(index_key, b"", db=db["events"])
        txn.put(block.hash, key, db=db["hashes"])
        for index, tx in enumerate(block.txs):
            txn.put(tx.hash, key + index.to_bytes(4, "big"), db=db["txs"])
        for state_key, value in changes.values.items():
            if value is None:
                txn.delete(state_key, db=db["values"])
            else:
                txn.put(state_key, value, db=db["values"])
        for pos, node in changes.nodes.items():
            if node is None:
                txn.delete(smt.position_key(pos), db=db["nodes"])
            else:
                txn.put(smt.position_key(pos), smt.encode_node(node), db=db["nodes"])
        txn.put(b"head", key, db=db["meta"])

    def _write(self, fill: Callable[[lmdb.Transaction], None]) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    fill(txn)
                return
            except lmdb.MapFullError:
                # The transaction was aborted; grow the map and redo it (LMDB's map is fixed until resized).
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except lmdb.Error as exc:
                if _is_disk_full(exc, self.path):
                    raise DiskFullError(f"{self.path}: disk full, block not stored ({exc})") from exc
                raise StoreError(f"{self.path}: LMDB write failed: {exc}") from exc
            except OSError as exc:
                if exc.errno in _DISK_ERRNOS:
                    raise DiskFullError(f"{self.path}: disk full, block not stored ({exc})") from exc
                raise

    def _load_head(self) -> Header:
        raw_height = self._get("meta", b"head")
        if raw_height is None:
            raise StoreError(f"{self.path}: store has a genesis but no head; it was not created by this version")
        raw_block = self._get("blocks", raw_height)
        if raw_block is None:
            raise StoreError(f"{self.path}: head block {int.from_bytes(raw_height, 'big')} is missing")
        return self._decode(raw_block).header

    def _decode(self, raw: bytes) -> Block:
        p = self.genesis.params
        return decode_block(
            raw, chain_id=self.genesis.chain_id, max_block_bytes=p.max_block_bytes, max_tx_bytes=p.max_tx_bytes
        )


LOW_DISK_BYTES = 64 * 1024 * 1024


def _is_disk_full(exc: lmdb.Error, path: Path) -> bool:
    """Whether a failed LMDB write was the disk (or the process's file-size limit) running out.

    LMDB reports a short page write as EIO rather than ENOSPC, so the message alone does not tell; look at the
    free space and at RLIMIT_FSIZE as well.
    """
    text = str(exc).lower()
    if "no space" in text or "file too large" in text or "quota" in text:
        return True
    if shutil.disk_usage(path).free < LOW_DISK_BYTES:
        return True
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    data_file = path / "data.mdb"
    return limit != resource.RLIM_INFINITY and data_file.exists() and data_file.stat().st_size >= limit - (1 << 20)
