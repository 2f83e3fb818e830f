"""Acting on the EHR contract's erasure events (crypto-shredding: destroying a user's keys erases their records).

When the admin deletes a user, the contract emits `erasure` with the user's uid and record CIDs. Every node
follows final blocks; on such an event the EHRs manager destroys the wrapped keys of those records (after which
nobody can decrypt them) and every node unpins their ciphertext and collects it.

Delivery is at least once: the watcher records the last height it has fully acted on in a small cursor file,
written only after the handlers for that height ran, so a node that crashes in between acts on the event again
after its restart (the handlers are idempotent) and a node that restarts does not rescan the whole chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from consensus.chainstore import ChainStore
from consensus.contract_txs import ReadOnlyLedgerStorage, shared_vm
from consensus.event_index import EventPosition
from consensus.vm import CallError
from node.ledger.service import LedgerService
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
    poll_s = 0.2
    contract_name = "ehr"

    def __init__(self, ledger: LedgerService, handlers: list[OnErasure], cursor_path: Path | None = None) -> None:
        self.ledger = ledger
        self.handlers = handlers
        self.cursor = ErasureCursor(cursor_path, ledger.chain_id)
        self.erased = 0
        self.scanned_to = 0

    async def run(self) -> None:
        self.scanned_to = self.cursor.load()
        contract: bytes | None = None
        while True:
            store = self.ledger.store
            if store is not None and contract is None:
                contract = _address_of(store, self.contract_name)
            if store is not None and contract is not None and self.scanned_to < store.height:
                # Only the EHR contract's erasure events count (another contract cannot order an erasure), and
                # they come from the chain store's event index: the cost follows the erasures, not the chain.
                head = store.height
                for attrs in _erasures(store, contract, self.scanned_to + 1, head):
                    self._handle(attrs)
                self.scanned_to = head
                with contextlib.suppress(OSError):  # a cursor we cannot write costs a rescan, never an erasure
                    self.cursor.save(head)
            await asyncio.sleep(self.poll_s)

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
