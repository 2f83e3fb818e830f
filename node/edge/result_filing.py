"""Results of offloaded tasks become EHRs on the edge node that computed them (docs/OFFLOAD.md).

`EdgeRecordSink` is the `offload.sink.ResultSink` the edge executor calls (in its worker thread) for a request
that names a patient. It builds the FHIR R4 record and queues it; `run()` files each one: encrypted into this
node's content store, its data key wrapped for the patient and the EHRs manager and filed with the manager over
`/ehrnet/ehr/1.0.0`, and its CID registered on the ledger with this edge node's key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from node.ehr import wire
from node.ehr.filing import FilingError, RecordFiler
from node.ledger.protocol import Ledger
from node.p2p.bridge import P2PError, P2PHost
from node.service import Service
from offload.context import RecordContext
from primitives import codec
from primitives.keys import SigningKey, address_of
from storage.address import CID
from storage.objects import ObjectStore

log = logging.getLogger(__name__)

MAX_QUEUED = 1000


class EdgeRecordSink(Service):
    name = "edge-records"

    def __init__(
        self,
        host: P2PHost,
        key: SigningKey,
        ledger: Ledger,
        objects: ObjectStore,
        manager: Callable[[], tuple[str, bytes]],  # (peer ID, Ed25519 public key) of the EHRs manager
        announce: Callable[[CID, int], Awaitable[object]] | None = None,
    ) -> None:
        self.host = host
        self.manager = manager
        self.filer = RecordFiler(key, ledger, objects, self._file_keys, lambda: manager()[1], announce)
        self._key = key
        self._queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue(MAX_QUEUED)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.filed: list[CID] = []
        self.failed = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    # ---- ResultSink (called from the executor's worker thread) ----------------------------------------------

    def store_result(self, patient: bytes, task: str, result: codec.Value, record: RecordContext | None) -> None:
        """`patient` is the patient's Ed25519 public key, as the device put it in its request."""
        if record is None or len(patient) != 32 or self._loop is None:
            log.info("offload result for %s not filed: no record context", task)
            return
        from offload.fhir import build_record, patient_id

        try:
            document = build_record(task, result, patient_id(address_of(patient)), record)
        except Exception as exc:  # a result we cannot turn into a valid record is logged, never fatal
            log.warning("cannot build a FHIR record for %s: %s", task, exc)
            return
        self._loop.call_soon_threadsafe(self._enqueue, patient, document)

    def _enqueue(self, patient: bytes, document: bytes) -> None:
        try:
            self._queue.put_nowait((patient, document))
        except asyncio.QueueFull:
            self.failed += 1
            log.warning("record queue full: a result was not filed")

    # ---- filing -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            patient, document = await self._queue.get()
            try:
                filed = await self.filer.file(patient, document)
            except (FilingError, P2PError, wire.EhrWireError, wire.RequestRefused) as exc:
                self.failed += 1
                log.warning("filing an offloaded result failed: %s", exc)
                continue
            self.filed.append(filed.cid)

    async def _file_keys(self, cid: CID, owner: bytes, wrapped: dict[bytes, bytes]) -> None:
        peer, _ = self.manager()
        fields: dict[str, codec.Value] = {
            "cid": str(cid),
            "owner": owner,
            "wrapped": [[reader, key] for reader, key in wrapped.items()],
        }
        answer = await self.host.request(
            peer, wire.EHR_PROTOCOL, wire.sign_request(self._key, "file_keys", fields), timeout_s=15
        )
        wire.decode_answer(answer)
