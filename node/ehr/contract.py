"""Talking to the `ehr` contract from inside a node: read-only views on the last final state, signed call
transactions, and waiting for a transaction's receipt (woken by the ledger's commit feed)."""

from __future__ import annotations

from consensus.chainstore import ChainStore
from consensus.contract_txs import ReadOnlyLedgerStorage, shared_vm
from consensus.execute import Receipt
from consensus.tx import Tx
from consensus.vm import BlockInfo
from node.ledger.protocol import Ledger
from primitives import codec
from primitives.keys import SigningKey

EHR_CONTRACT = "ehr"
CALL_GAS = 2_000_000


class ContractCallError(RuntimeError):
    """A view or call of the EHR contract failed; the message carries the VM's reason."""


def ehr_view(store: ChainStore, func: str, args: list[codec.Value], caller_pk: bytes = b"") -> codec.Value:
    head = store.head
    with store.reader() as reader:
        receipt = shared_vm().view(
            ReadOnlyLedgerStorage(reader.get_value),
            EHR_CONTRACT,
            func,
            args,
            block=BlockInfo(head.height, head.time_ms // 1000),
            caller_pk=caller_pk,
        )
    if receipt.status != "ok":
        raise ContractCallError(f"ehr.{func}: {receipt.status}: {receipt.error}")
    return receipt.return_value


def call_tx(key: SigningKey, chain_id: str, nonce: int, func: str, args: list[codec.Value]) -> Tx:
    body: dict[str, codec.Value] = {"contract": EHR_CONTRACT, "function": func, "args": args, "gas_limit": CALL_GAS}
    return Tx.create(key, chain_id, "call", nonce, body)


async def final_receipt(ledger: Ledger, tx_hash: bytes, timeout_s: float = 15.0) -> Receipt:
    """Wait until `tx_hash` is final on this node and return its receipt."""
    receipt = await ledger.final(tx_hash, timeout_s)
    if receipt is None:
        raise ContractCallError(f"transaction {tx_hash.hex()} not final after {timeout_s:.0f} s")
    return receipt


def call_return(receipt: Receipt) -> codec.Value:
    """The contract's return value from a final call receipt, or ContractCallError with the VM's reason."""
    result = receipt.result
    if not receipt.ok or not isinstance(result, dict) or result.get("vm_status") != "ok":
        status = result.get("vm_status") if isinstance(result, dict) else receipt.status
        raise ContractCallError(f"call failed ({status!s}): {receipt.error}")
    return result.get("return")
