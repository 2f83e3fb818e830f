"""Acting on the EHR contract's erasure events (crypto-shredding, issue 5 "EHR privacy").

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

from consensus import codec
from node.ledger_service import LedgerService
from node.service import Service

log = logging.getLogger(__name__)

# on_erasure(uid, cids) — called once per event, in block order.
OnErasure = Callable[[bytes, list[str]], None]

# Heights scanned before yielding to the loop, so catching up on a long chain never stalls the node's other work.
SCAN_SLICE = 200


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

    def __init__(self, ledger: LedgerService, handlers: list[OnErasure], cursor_path: Path | None = None) -> None:
        self.ledger = ledger
        self.handlers = handlers
        self.cursor = ErasureCursor(cursor_path, ledger.chain_id)
        self.erased = 0
        self.scanned_to = 0

    async def run(self) -> None:
        self.scanned_to = self.cursor.load()
        while True:
            store = self.ledger.store
            if store is not None and self.scanned_to < store.height:
                stop = min(store.height, self.scanned_to + SCAN_SLICE)
                while self.scanned_to < stop:
                    height = self.scanned_to + 1
                    for receipt in store.get_receipts(height):
                        for event in receipt.events:
                            if event.name == "erasure":
                                self._handle(event.attrs)
                    self.scanned_to = height
                with contextlib.suppress(OSError):  # a cursor we cannot write costs a rescan, never an erasure
                    self.cursor.save(self.scanned_to)
                await asyncio.sleep(0)
                continue
            await asyncio.sleep(self.poll_s)

    def _handle(self, attrs: dict[str, codec.Value]) -> None:
        data = attrs.get("data")
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
