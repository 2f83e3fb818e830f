"""The EHRs manager (paper Sec. III-B): relays read requests to the contract and serves what it allows.

The 4-step protocol, as this service runs it for a `retrieve` request on `/ehrnet/ehr/1.0.0`:
1. request: the requester's signed `ehr.retrieve_ehrs(patient)` transaction arrives; the sender's key is taken
   from the transaction (it must be the request's signer); an expired request, or a transaction whose nonce
   another transaction spent (a replay), is refused;
2. verification: the manager submits it (unless the ledger holds it already) and waits until it is final; the
   contract checks the policy list and answers with the authorised CIDs, or a denial that it has already
   recorded as a penalty. Serving is idempotent: the same transaction gets the same decision again while the
   decision is fresh (`MAX_REQUEST_AGE_MS`), so a relay that forwards someone's request first cannot use it up;
3. retrieval: the manager reads each record's ciphertext from the content store (from peers if not local);
4. feedback: the manager wraps each record's data key for the requester's registered encryption key only and
   returns ciphertext + wrapped key; the requester decrypts locally. The access is on the ledger (the
   transaction's `access` event and the patient's audit trail).
It also files the data keys of records that devices (`store`) and edge nodes (`file_keys`) store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nacl.exceptions
import nacl.public
from aiohttp import web

from consensus.errors import TxError, TxNonceError
from consensus.tx import decode_tx
from node.api.server import json_error, read_json
from node.ehr import wire
from node.ehr.contract import EHR_CONTRACT, ContractCallError, call_return, ehr_view, final_receipt
from node.ehr.filing import FilingError, RecordFiler, enc_key_of
from node.ledger.protocol import Ledger
from node.p2p.bridge import P2PHost
from node.service import Service
from primitives import codec
from primitives.keys import SigningKey, address_of
from storage.address import CID
from storage.ehr_vault import EhrVault
from storage.errors import StorageError
from storage.keystore import KeyStore
from storage.objects import ObjectStore
from storage.record_encryption import x25519_from_ed25519_seed

log = logging.getLogger(__name__)

Fetch = Callable[[CID], Awaitable[bytes]]
MAX_RECORDS_PER_ANSWER = 64


class ManagerService(Service):
    name = "ehr-manager"

    def __init__(
        self,
        host: P2PHost,
        key: SigningKey,
        ledger: Ledger,
        objects: ObjectStore,
        directory: Path,
        fetch: Fetch | None = None,
        announce: Callable[[CID, int], Awaitable[object]] | None = None,
    ) -> None:
        self.host = host
        self.key = key
        self.ledger = ledger
        self.objects = objects
        self.uid = address_of(key.public_key)
        self._enc_private, self.enc_public = x25519_from_ed25519_seed(key.seed)
        self.vault = EhrVault(KeyStore(directory), self.uid, self._enc_private)  # the key grant (storage/ehr_vault.py)
        self._fetch = fetch or self._read_local
        self.filer = RecordFiler(key, ledger, objects, self._file_keys_locally, lambda: key.public_key, announce)
        self.served = 0
        self.refused = 0
        self.erased_users = 0
        self._stopped = False

    async def start(self) -> None:
        self.host.set_request_handler(wire.EHR_PROTOCOL, self._serve, wire.MAX_REQUEST_BYTES)

    def routes(self) -> list[web.RouteDef]:
        """`POST /ehr/request`: the same signed requests over HTTP, for devices without libp2p (the answer is the
        protocol's own answer, hex-encoded; a refusal is in it, not in the HTTP status)."""

        async def relay(request: web.Request) -> web.Response:
            body = await read_json(request, max_bytes=2 * wire.MAX_REQUEST_BYTES + 1024)
            text = body.get("request") if isinstance(body, dict) else None
            try:
                data = bytes.fromhex(text) if isinstance(text, str) else b""
            except ValueError:
                data = b""
            if not data:
                return json_error(400, 'request: the signed sharing request as hex, {"request": "..."}')
            if len(data) > wire.MAX_REQUEST_BYTES:
                return json_error(413, f"request: larger than {wire.MAX_REQUEST_BYTES} bytes")
            return web.json_response({"answer": (await self._serve("http", data)).hex()})

        return [web.post("/ehr/request", relay)]

    async def stop(self) -> None:
        # Stopped before the ledger and the host (it comes after them in the node's list): requests that still
        # arrive are refused rather than reaching a closed key store or chain store.
        self._stopped = True
        self.vault.close()

    async def _read_local(self, cid: CID) -> bytes:
        return b"".join(self.objects.cat(cid))

    async def _file_keys_locally(self, cid: CID, owner: bytes, wrapped: dict[bytes, bytes]) -> None:
        self.vault.file(cid, owner, wrapped)

    def erase_user(self, uid: bytes) -> list[CID]:
        """Crypto-shred a deleted user's records: their wrapped keys are destroyed (the contract's erasure event)."""
        erased = self.vault.erase_user(uid)
        self.erased_users += 1
        return erased

    def status(self) -> dict[str, object]:
        return {"ehr_manager": {"served": self.served, "refused": self.refused, "erased_users": self.erased_users}}

    # ---- the protocol ---------------------------------------------------------------------------------------

    async def _serve(self, peer: str, data: bytes) -> bytes:
        if self._stopped:
            return wire.refuse("unavailable", "this node is stopping")
        try:
            request = wire.decode_request(data)
        except wire.EhrWireError as exc:
            self.refused += 1
            return wire.refuse("malformed", str(exc))
        try:
            if request.kind == "retrieve":
                answer = await self.retrieve(request)
            elif request.kind == "store":
                answer = await self._store(request)
            else:
                answer = await self._file_keys(request)
        except wire.EhrWireError as exc:
            self.refused += 1
            return wire.refuse("malformed", str(exc))
        except (FilingError, ContractCallError, StorageError) as exc:
            self.refused += 1
            return wire.refuse("failed", str(exc))
        self.served += 1
        return answer

    async def retrieve(self, request: wire.SignedRequest) -> bytes:
        store, chain_id = self.ledger.store, self.ledger.chain_id
        issued = wire.field_int(request.fields, "issued_ms")
        age = int(time.time() * 1000) - issued
        if age > wire.MAX_REQUEST_AGE_MS or age < -wire.MAX_REQUEST_AGE_MS:
            return wire.refuse("expired", f"the request was issued {age / 1000:.0f} s ago; it must be fresh")
        raw = wire.field_bytes(request.fields, "tx")
        try:
            tx = decode_tx(raw, chain_id=chain_id, max_bytes=self.ledger.genesis.params.max_tx_bytes)
        except TxError as exc:
            return wire.refuse("bad-tx", str(exc))
        if tx.sender != request.sender:
            return wire.refuse("bad-tx", "the transaction is not signed by the requester")
        body = tx.body
        if tx.kind != "call" or body.get("contract") != EHR_CONTRACT or body.get("function") != "retrieve_ehrs":
            return wire.refuse("bad-tx", "a retrieve request carries an ehr.retrieve_ehrs call")
        # Step 1 → 2. Serving is idempotent: the ledger decides once per transaction, and the same transaction
        # from its signer gets that decision again while it is fresh. Whoever forwards someone's signed request
        # first so gains nothing (the keys are wrapped for the signer) and costs the signer nothing (a refusal as
        # a replay would have locked them out of their own request).
        refusal = self._submit_once(tx.hash, raw)
        if refusal is not None:
            return refusal
        receipt = await final_receipt(self.ledger, tx.hash)  # woken by the commit feed
        height = (store.tx_location(tx.hash) or (0, 0))[0]
        header = store.get_header(height)
        decided_ms = header.time_ms if header is not None else 0
        if int(time.time() * 1000) - decided_ms > wire.MAX_REQUEST_AGE_MS:
            return wire.refuse(
                "replayed", f"this request was decided at height {height}, too long ago to serve again; sign a new one"
            )
        decision = call_return(receipt)
        if not isinstance(decision, dict) or not decision.get("granted"):
            reason = str(decision.get("reason")) if isinstance(decision, dict) else "denied"
            return wire.refuse("denied", f"{reason} (recorded on the ledger at height {height})")
        cids = decision.get("cids")
        assert isinstance(cids, list)
        # Step 3 and 4: fetch ciphertext, wrap each data key for this requester only.
        _, requester_enc = enc_key_of(self.ledger, request.sender)
        requester_uid = address_of(request.sender)
        records: list[codec.Value] = []
        for text in cids[:MAX_RECORDS_PER_ANSWER]:
            cid = CID.parse(str(text))
            wrapped = self.vault.grant(cid, requester_uid, requester_enc)
            if wrapped is None:
                log.warning("no key filed for %s; skipping it", cid)
                continue
            records.append({"cid": str(cid), "ciphertext": await self._fetch(cid), "wrapped_key": wrapped})
        return wire.ok(records=records, tx_hash=tx.hash, height=height, reason=str(decision.get("reason")))

    def _submit_once(self, tx_hash: bytes, raw: bytes) -> bytes | None:
        """Put a retrieve transaction on the ledger unless it is there already (final or pending); a refusal
        if the ledger will not take it, e.g. another transaction has spent its nonce (a true replay)."""
        store = self.ledger.store
        if store.tx_location(tx_hash) is not None or self.ledger.pending(tx_hash):
            return None
        try:
            self.ledger.submit_tx(raw)  # a transaction the pool already holds is admitted as known, not refused
        except TxNonceError as exc:
            if store.tx_location(tx_hash) is not None:  # final while we looked
                return None
            return wire.refuse("replayed", f"another transaction spent this request's nonce: {exc}")
        except TxError as exc:
            return wire.refuse("bad-tx", str(exc))
        return None

    async def _store(self, request: wire.SignedRequest) -> bytes:
        """A device's locally computed result, sealed for the manager: file it as the patient's EHR."""
        patient = wire.field_bytes(request.fields, "patient", 32)
        if request.sender != patient:
            return wire.refuse("forbidden", "only the patient's own key may store their records")
        sealed = wire.field_bytes(request.fields, "sealed")
        try:
            plaintext = nacl.public.SealedBox(nacl.public.PrivateKey(self._enc_private)).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            return wire.refuse("decrypt-failed", "the record is not sealed for this manager")
        from offload.errors import OffloadError
        from offload.fhir import parse_record

        try:
            parse_record(plaintext)  # only valid FHIR R4 analysis records become EHRs
        except OffloadError as exc:
            return wire.refuse("invalid-record", str(exc))
        filed = await self.filer.file(patient, plaintext)
        return wire.ok(cid=str(filed.cid), index=filed.index, tx_hash=filed.tx_hash)

    async def _file_keys(self, request: wire.SignedRequest) -> bytes:
        """An edge node stored a record: keep its wrapped data keys (only a registered edge may file them)."""
        user = ehr_view(self.ledger.store, "get_user", [request.sender])
        if not isinstance(user, dict) or user.get("role") not in ("edge", "ehr_manager"):
            return wire.refuse("forbidden", "only registered edge nodes may file record keys")
        cid = CID.parse(wire.field_str(request.fields, "cid"))
        owner = wire.field_bytes(request.fields, "owner", 20)
        wrapped_field = request.fields.get("wrapped")
        if not isinstance(wrapped_field, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, bytes) for x in e) for e in wrapped_field
        ):
            return wire.refuse("malformed", "wrapped: a list of [reader uid, wrapped key] pairs")
        wrapped: dict[bytes, bytes] = {}
        for entry in wrapped_field:
            assert isinstance(entry, list)
            reader, sealed = entry
            assert isinstance(reader, bytes) and isinstance(sealed, bytes)
            wrapped[reader] = sealed
        if self.uid not in wrapped:
            return wire.refuse("malformed", "the record's key must be wrapped for the manager too")
        self.vault.file(cid, owner, wrapped)
        return wire.ok(cid=str(cid))
