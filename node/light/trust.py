"""The light client's trust anchor on disk: the latest verified header and the set that signs the next height.

A restarted client resumes from here instead of re-verifying from genesis. The file is the client's own record
of what it verified (like a checkpoint), written atomically so a crash leaves the previous anchor or the new one.
It is bound to the genesis hash, so a data dir cannot silently switch networks.

Format (canonical DAG-CBOR): {"type": "ehrnet/light-trust/v1", "genesis_hash": bytes, "header": <header>,
"next_validators": [public keys]}.
"""

from __future__ import annotations

import os
from pathlib import Path

from consensus.block import Header
from consensus.errors import LedgerError
from consensus.genesis import Genesis
from consensus.genesis_block import build_genesis
from consensus.lightclient import LightClient
from consensus.votes import ValidatorSet
from node.light.errors import TrustStoreError
from primitives import codec

TRUST_TYPE = "ehrnet/light-trust/v1"
TRUST_FILE = "trusted_head.cbor"


class TrustStore:
    def __init__(self, data_dir: Path, genesis: Genesis) -> None:
        self.path = Path(data_dir) / TRUST_FILE
        self.genesis = genesis
        self._genesis_hash = genesis.hash()

    def load(self) -> tuple[Header, ValidatorSet] | None:
        """The saved anchor, or None when there is none yet; a corrupt or foreign file raises TrustStoreError."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TrustStoreError(f"{self.path}: cannot read ({exc})") from exc
        try:
            doc = codec.decode(raw)
            if not isinstance(doc, dict) or doc.get("type") != TRUST_TYPE:
                raise TrustStoreError(f"{self.path}: not a light-client trust file")
            if doc.get("genesis_hash") != self._genesis_hash:
                raise TrustStoreError(f"{self.path}: belongs to another network (genesis differs); use another dir")
            header = Header.from_value(doc.get("header"))
            members = doc.get("next_validators")
            if not isinstance(members, list) or not all(isinstance(m, bytes) for m in members):
                raise TrustStoreError(f"{self.path}: next_validators is not a list of keys")
            validators = ValidatorSet(tuple(m for m in members if isinstance(m, bytes)))
        except (codec.CodecError, LedgerError, ValueError) as exc:
            raise TrustStoreError(f"{self.path}: corrupt trust file ({exc})") from exc
        if header.chain_id != self.genesis.chain_id:
            raise TrustStoreError(f"{self.path}: header is for chain {header.chain_id!r}")
        return header, validators

    def save(self, header: Header, validators: ValidatorSet) -> None:
        doc: codec.Value = {
            "type": TRUST_TYPE,
            "genesis_hash": self._genesis_hash,
            "header": header.to_value(),
            "next_validators": list(validators.members),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(codec.encode(doc))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise TrustStoreError(f"{self.path}: cannot write ({exc})") from exc

    def open_client(self) -> LightClient:
        """A verifier starting from the saved anchor, or from the genesis block when there is none."""
        saved = self.load()
        if saved is None:
            block0, _ = build_genesis(self.genesis)
            return LightClient(block0.header, ValidatorSet(self.genesis.validators))
        try:
            return LightClient(*saved)
        except LedgerError as exc:
            raise TrustStoreError(f"{self.path}: {exc}") from exc
