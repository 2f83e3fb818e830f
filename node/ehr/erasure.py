"""Acting on the EHR contract's erasure events (crypto-shredding: destroying a user's keys erases their records).

When the admin deletes a user, the contract emits `erasure` with the user's uid and record CIDs. Every node
follows final blocks; on such an event the EHRs manager destroys the wrapped keys of those records (after which
nobody can decrypt them) and every node unpins their ciphertext and collects it.

Delivery is at least once: the watcher records the last height it has fully acted on in a small cursor file,
written only after the handlers for that height ran, so a node that crashes in between acts on the event again
after its restart (the handlers are idempotent) and a node that restarts does not rescan the whole chain.

The watcher follows the ledger's commit feed (node/ledger/commit_feed.py): it first scans what was final before
it started, through the chain store's event index in one pass, and then looks at each block as it becomes final.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from consensus.chainstore import ChainStore
from consensus.contract_txs import ReadOnlyLedgerStorage, shared_vm
from consensus.event_index import EventPosition
from consensus.vm import CallError
from node.ledger.protocol import Ledger
from node.service import Service
from primitives import codec

log = logging.getLogger(__name__)

# on_erasure(uid, cids) — called once per event, in block order.
OnErasure = Callable[[bytes, list[str]], None]


class ErasureCursor:
    """The last height whose erasure events were acted on, per chain (a new chain in the same dir starts at 0)."""

    def __init__(self, path: Path | None, chain_id: str) -> None:
        self.path = path
        self.chain_id = chain_id

    def load(self) -> int:
        if self.path is None:
            return 0
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return 0  # missing or damaged: rescanning is safe, only slower
        if not isinstance(doc, dict) or doc.get("chain_id") != self.chain_id:
            return 0
        height = doc.get("height")
        return height if isinstance(height, int) and height >= 0 else 0

    def save(self, height: int) -> None:
        if self.path is None:
            return
        # Write-then-rename, so a crash leaves either the old cursor or the new one, never half a file.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"chain_id": self.chain_id, "height": height}))
        os.replace(tmp, self.path)


class ErasureWatcher(Service):
    name = "erasure"
    contract_name = "ehr"
    # The cursor is written at once after an erasure, else at most this often: losing it costs only a rescan of
    # the blocks since (through the event index), and a write per block would be a file write every 50 ms.
    cursor_every_s = 1.0

    def __init__(self, ledger: Ledger, handlers: list[OnErasure], cursor_path: Path | None = None) -> None:
        self.ledger = ledger
        self.handlers = handlers
        self.cursor = ErasureCursor(cursor_path, ledger.chain_id)
        self.erased = 0
        self.scanned_to = 0
        self._contract: bytes | None = None
        self._saved_at = 0.0

    async def run(self) -> None:
        self.scanned_to = self.cursor.load()
        head = self.ledger.store.height
        if self.scanned_to < head:
            self._scan(head)  # what became final while this node was down, in one pass over the event index
        async for block in self.ledger.committed(after=max(self.scanned_to, head)):
            self._scan(block.height)

    def _scan(self, upto: int) -> None:
        """Act on the erasure events of heights scanned_to+1..upto, then move the cursor to `upto`."""
        store = self.ledger.store
        if self._contract is None:
            self._contract = _address_of(store, self.contract_name)  # not deployed yet: nothing to act on
        erased = self.erased
        if self._contract is not None:
            # Only the EHR contract's erasure events count (another contract cannot order an erasure), and they
            # come from the chain store's event index: the cost follows the erasures, not the chain.
            for attrs in _erasures(store, self._contract, self.scanned_to + 1, upto):
                self._handle(attrs)
        self.scanned_to = upto
        now = time.monotonic()
        if self.erased != erased or now - self._saved_at >= self.cursor_every_s:
            self._saved_at = now
            with contextlib.suppress(OSError):  # a cursor we cannot write costs a rescan, never an erasure
                self.cursor.save(upto)

    def _handle(self, data: codec.Value) -> None:
        if not isinstance(data, dict):
            return
        uid, cids = data.get("uid"), data.get("cids")
        if not isinstance(uid, bytes) or not isinstance(cids, list):
            return
        names = [c for c in cids if isinstance(c, str)]
        for handler in self.handlers:
            try:
                handler(uid, names)
            except Exception:  # one failing handler must not stop the others from shredding
                log.exception("erasure handler failed for user %s", uid.hex())
        self.erased += 1
        log.info("erased user %s (%d records)", uid.hex()[:16], len(names))


def _address_of(store: ChainStore, name: str) -> bytes | None:
    """The address registered under a contract name (None if there is none: no erasures to act on)."""
    vm = shared_vm()
    with store.reader() as reader:
        try:
            return vm.resolve(ReadOnlyLedgerStorage(reader.get_value), name)
        except CallError:
            return None


def _erasures(store: ChainStore, contract: bytes, low: int, high: int) -> list[codec.Value]:
    """The data of `contract`'s erasure events in heights low..high, oldest first."""
    newest_first: list[codec.Value] = []
    before: EventPosition | None = None
    while True:
        page, before = store.events(contract, "erasure", from_height=low, to_height=high, before=before, limit=1000)
        newest_first += [event.data for _, _, event in page]
        if before is None:
            return newest_first[::-1]
