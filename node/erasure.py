"""Acting on the EHR contract's erasure events (crypto-shredding, issue 5 "EHR privacy").

When the admin deletes a user, the contract emits `erasure` with the user's uid and record CIDs. Every node
follows final blocks; on such an event the EHRs manager destroys the wrapped keys of those records (after which
nobody can decrypt them) and every node unpins their ciphertext and collects it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from consensus import codec
from node.ledger_service import LedgerService
from node.service import Service

log = logging.getLogger(__name__)

# on_erasure(uid, cids) — called once per event, in block order.
OnErasure = Callable[[bytes, list[str]], None]


class ErasureWatcher(Service):
    name = "erasure"
    poll_s = 0.2

    def __init__(self, ledger: LedgerService, handlers: list[OnErasure]) -> None:
        self.ledger = ledger
        self.handlers = handlers
        self.erased = 0

    async def run(self) -> None:
        seen = 0
        while True:
            store = self.ledger.store
            if store is not None:
                while seen < store.height:
                    seen += 1
                    for receipt in store.get_receipts(seen):
                        for event in receipt.events:
                            if event.name == "erasure":
                                self._handle(event.attrs)
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
