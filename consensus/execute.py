"""The `execute(state, tx)` boundary: receipts, the handler registry and the built-in transaction kinds.

Applications plug in as handlers keyed by transaction kind (`Registry.register`): the contract VM adds
`deploy` and `call` the same way `record` and the system kinds are added here. A handler sees a `WorkingState`
(with snapshot/revert) and an `ExecContext`; it returns an `Outcome` or raises `TxFailed`.

Costs are a table (docs/ARCHITECTURE.md §5, "Rules as data"); the ledger is permissioned, so cost is accounted in
receipts for metering and limits, not charged against a balance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

from consensus.accounts import check_sender
from consensus.block import Block, Header, merkle_root, validate_body, validate_link
from consensus.errors import BlockError, TxError, TxFailed, TxKindError, TxNonceError
from consensus.genesis import Params
from consensus.state import StateChanges, StateReader, WorkingState, get_nonce, set_nonce, validators_at
from consensus.tx import Tx
from consensus.vm_version_state import vm_rules_at
from consensus.votes import ValidatorSet
from primitives import codec

STATUS_OK = 0
STATUS_FAILED = 1

COSTS: dict[str, int] = {
    "base": 1_000,  # every transaction: signature check, nonce, receipt
    "per_byte": 10,  # per byte of the encoded transaction
    "write": 2_000,  # per state key written
    "system": 5_000,  # set changes and evidence
}


@dataclass(frozen=True)
class Event:
    name: str
    attrs: dict[str, codec.Value] = field(default_factory=dict)

    def to_value(self) -> codec.Value:
        attrs = self.attrs
        if not codec.keys_in_order(attrs):
            # Handlers build attrs in any order; sorted here, a receipt's map is already canonical and encodes
            # without cbor2's canonical-mode sort (about half the cost of encoding a receipt).
            attrs = codec.sorted_map(attrs)
        return {"name": self.name, "attrs": attrs}  # canonical key order


@dataclass(frozen=True)
class Receipt:
    """A transaction's outcome. `gas` and `result` are set by contract transactions only (contract_txs.py): the
    VM gas used and {"vm_status", "return", "address"}; they are encoded only when set, so receipts of the
    other kinds keep their original form."""

    tx_hash: bytes
    status: int
    cost: int
    events: tuple[Event, ...] = ()
    error: str = ""
    gas: int = 0
    result: codec.Value = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    def to_value(self) -> codec.Value:
        # Keys in canonical order (codec.encode then needs no sort): gas, cost, error, events, result, status, tx_hash.
        value: dict[str, codec.Value] = {"gas": self.gas} if self.gas else {}
        value["cost"] = self.cost
        value["error"] = self.error
        value["events"] = [e.to_value() for e in self.events]
        if self.result is not None:
            value["result"] = self.result
        value["status"] = self.status
        value["tx_hash"] = self.tx_hash
        return value

    @classmethod
    def from_value(cls, value: codec.Value) -> Receipt:
        if not isinstance(value, dict):
            raise ValueError("a receipt is a map")
        tx_hash, status, cost = value.get("tx_hash"), value.get("status"), value.get("cost")
        events, error = value.get("events"), value.get("error")
        if not (isinstance(tx_hash, bytes) and isinstance(status, int) and isinstance(cost, int)):
            raise ValueError("malformed receipt")
        if not isinstance(events, list) or not isinstance(error, str):
            raise ValueError("malformed receipt")
        parsed: list[Event] = []
        for e in events:
            if not (isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("attrs"), dict)):
                raise ValueError("malformed receipt event")
            name, attrs = e["name"], e["attrs"]
            assert isinstance(name, str) and isinstance(attrs, dict)
            parsed.append(Event(name, attrs))
        gas = value.get("gas", 0)
        if not isinstance(gas, int) or isinstance(gas, bool):
            raise ValueError("malformed receipt gas")
        return cls(tx_hash, status, cost, tuple(parsed), error, gas, value.get("result"))

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "tx_hash": self.tx_hash.hex(),
            "status": "ok" if self.ok else "failed",
            "cost": self.cost,
            "events": [{"name": e.name, "attrs": {k: _hex(v) for k, v in e.attrs.items()}} for e in self.events],
            "error": self.error,
        }
        if self.gas:
            doc["gas"] = self.gas
        if self.result is not None:
            doc["result"] = _hex(self.result)
        return doc


def _hex(value: codec.Value) -> object:
    """JSON form with bytes as hex at any depth (contract events and results nest bytes)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_hex(v) for v in value]
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    return value


def receipts_root(receipts: list[Receipt] | tuple[Receipt, ...]) -> bytes:
    return _root_of_encodings([r.encode() for r in receipts])


def _root_of_encodings(encodings: list[bytes]) -> bytes:
    return merkle_root([hashlib.sha256(e).digest() for e in encodings])


@dataclass(frozen=True)
class ExecContext:
    """What a handler may know about the block it runs in (never the wall clock: block time is consensus)."""

    chain_id: str
    height: int
    time_ms: int
    proposer: bytes
    params: Params


@dataclass
class Outcome:
    """What a handler did. A non-empty `error` makes the receipt failed and reverts the handler's writes while
    keeping `cost`, `gas` and `result` (a reverted contract call still reports the gas its sender pays)."""

    cost: int
    events: list[Event] = field(default_factory=list)
    gas: int = 0
    result: codec.Value = None
    error: str = ""


Checker = Callable[[Tx, Params], None]
Handler = Callable[[WorkingState, Tx, ExecContext], Outcome]


@dataclass(frozen=True)
class TxKind:
    """A transaction kind: a stateless body check (raises TxError; run at admission) and a state handler."""

    name: str
    check: Checker
    handle: Handler


class Registry:
    """Transaction kind -> handler. Every node must register the same kinds or they compute different roots."""

    def __init__(self, kinds: list[TxKind] | None = None) -> None:
        self._kinds: dict[str, TxKind] = {}
        for kind in kinds or []:
            self.register(kind)

    def register(self, kind: TxKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"transaction kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> TxKind:
        kind = self._kinds.get(name)
        if kind is None:
            raise TxKindError(f"unknown transaction kind {name!r}; known: {sorted(self._kinds)}")
        return kind

    def check(self, tx: Tx, params: Params) -> None:
        """Stateless admission check for the mempool and HTTP: kind known and body well-formed."""
        self.get(tx.kind).check(tx, params)

    @property
    def names(self) -> list[str]:
        return sorted(self._kinds)


def execute(state: WorkingState, tx: Tx, ctx: ExecContext, registry: Registry) -> Receipt:
    """Run one signature-checked transaction.

    Raises TxError when the transaction may not be in a block at all (unknown kind, a sender an allowlist chain
    does not allow, wrong nonce): a proposer
    skips it and a validator rejects a block holding it. Otherwise the nonce is consumed and the receipt
    reports success or the handler's failure, with the handler's writes reverted.
    """
    kind = registry.get(tx.kind)
    # Account permissioning is a validity rule (consensus/accounts.py): a block holding a transaction from a
    # sender the chain does not allow is invalid, whoever proposed it.
    check_sender(ctx.params.accounts, state.get, tx.sender, ctx.height)
    expected = get_nonce(state.get, tx.address)
    if tx.nonce != expected:
        raise TxNonceError(f"nonce {tx.nonce} but the sender's next nonce is {expected}")
    set_nonce(state, tx.address, expected + 1)
    base_cost = COSTS["base"] + COSTS["per_byte"] * tx.size
    snapshot = state.snapshot()
    try:
        kind.check(tx, ctx.params)
        outcome = kind.handle(state, tx, ctx)
    except TxFailed as exc:
        state.revert(snapshot)
        return Receipt(tx.hash, STATUS_FAILED, base_cost + exc.cost, (), str(exc))
    except TxError as exc:
        state.revert(snapshot)
        return Receipt(tx.hash, STATUS_FAILED, base_cost, (), str(exc))
    cost = base_cost + outcome.cost
    if outcome.error:
        state.revert(snapshot)
        return Receipt(tx.hash, STATUS_FAILED, cost, (), outcome.error, outcome.gas, outcome.result)
    return Receipt(tx.hash, STATUS_OK, cost, tuple(outcome.events), "", outcome.gas, outcome.result)


@dataclass(frozen=True)
class BlockResult:
    """What executing a block produced; the chain store persists `changes` with the block when it is final."""

    changes: StateChanges
    receipts: tuple[Receipt, ...]
    receipt_encodings: tuple[bytes, ...]  # encoded once: hashed into the root and stored as they are
    receipts_root: bytes
    validators: ValidatorSet
    next_validators: ValidatorSet


def _next_validators(state: WorkingState, height: int) -> ValidatorSet:
    try:
        return validators_at(state.get, height + 1)
    except ValueError as exc:
        raise BlockError(f"state holds no validator set for height {height + 1}") from exc


def build_block(
    base: StateReader,
    parent: Header,
    candidates: Iterable[Tx],
    *,
    proposer: bytes,
    time_ms: int,
    params: Params,
    registry: Registry,
) -> tuple[Block, BlockResult]:
    """Assemble a proposal from signature-checked candidates (e.g. `Mempool.reap`).

    Candidates that may not be in a block (unknown kind, nonce out of order) are skipped rather than failing
    the proposal; limits on count and bytes are respected.
    """
    height = parent.height + 1
    state = WorkingState(base)
    validators = validators_at(state.get, height)
    ctx = ExecContext(parent.chain_id, height, time_ms, proposer, params)
    strict_gas = vm_rules_at(state.get, height, params.vm_version).strict_block_gas
    included: list[Tx] = []
    receipts: list[Receipt] = []
    total_bytes = 0
    block_gas = 0
    for tx in candidates:
        if len(included) >= params.max_block_txs or total_bytes + tx.size > params.max_block_bytes:
            break
        if block_gas >= params.max_block_gas:
            break  # contract gas bounds a block's execution time (see apply_block)
        snapshot = state.snapshot()
        try:
            receipt = execute(state, tx, ctx, registry)
        except TxError:
            state.revert(snapshot)
            continue
        if strict_gas and block_gas + receipt.gas > params.max_block_gas:
            state.revert(snapshot)
            break  # it would take the block over max_block_gas: it waits for the next block
        included.append(tx)
        receipts.append(receipt)
        total_bytes += tx.size
        block_gas += receipt.gas
    changes = state.commit()
    encodings = tuple(r.encode() for r in receipts)
    root = _root_of_encodings(list(encodings))
    next_validators = _next_validators(state, height)
    header = Header(
        chain_id=parent.chain_id,
        height=height,
        parent_hash=parent.hash,
        time_ms=time_ms,
        proposer=proposer,
        tx_root=merkle_root([tx.hash for tx in included]),
        receipts_root=root,
        state_root=changes.root,
        validators_hash=validators.hash(),
        next_validators_hash=next_validators.hash(),
    )
    result = BlockResult(changes, tuple(receipts), encodings, root, validators, next_validators)
    return Block(header, tuple(included)), result


def apply_block(
    base: StateReader,
    block: Block,
    parent: Header,
    *,
    params: Params,
    registry: Registry,
    preverified: Container[bytes] = frozenset(),
) -> BlockResult:
    """Validate `block` against its parent and re-execute it on `base` (the state after `parent`).

    Raises BlockError if anything disagrees: link, body, proposer, a signature (skipped for hashes in
    `preverified`, e.g. ones the mempool already checked), a nonce, or any root the header claims.
    """
    header = block.header
    validate_link(header, parent)
    validate_body(block, max_txs=params.max_block_txs, max_bytes=params.max_block_bytes)
    state = WorkingState(base)
    try:
        validators = validators_at(state.get, header.height)
    except ValueError as exc:
        raise BlockError(str(exc)) from exc
    if validators.hash() != header.validators_hash:
        raise BlockError("header validators_hash does not match the state's validator set")
    if header.proposer not in validators:
        raise BlockError("proposer is not a validator at this height")
    ctx = ExecContext(header.chain_id, header.height, header.time_ms, header.proposer, params)
    strict_gas = vm_rules_at(state.get, header.height, params.vm_version).strict_block_gas
    receipts: list[Receipt] = []
    block_gas = 0
    for index, tx in enumerate(block.txs):
        # Gas *used* (deterministic) rather than declared limits, so clients need not estimate. Version 1: a
        # transaction may start only while the block's gas is below max_block_gas. From version 2 the block's
        # total may not exceed it, checked after each transaction, so a validator stops a hostile block after at
        # most max_block_gas + max_tx_gas (docs/CONSENSUS.md "Block execution bound").
        if block_gas >= params.max_block_gas and not strict_gas:
            raise BlockError(f"transaction {index} starts after the block used max_block_gas")
        if tx.chain_id != header.chain_id:
            raise BlockError(f"transaction {index} is for chain {tx.chain_id!r}")
        if tx.hash not in preverified and not tx.verify_signature():
            raise BlockError(f"transaction {index} has an invalid signature")
        try:
            receipt = execute(state, tx, ctx, registry)
        except TxError as exc:
            raise BlockError(f"transaction {index} may not be in a block: {exc}") from exc
        receipts.append(receipt)
        block_gas += receipt.gas
        if strict_gas and block_gas > params.max_block_gas:
            raise BlockError(f"transaction {index} takes the block's gas to {block_gas}, over max_block_gas")
    changes = state.commit()
    if changes.root != header.state_root:
        raise BlockError("state root after execution differs from the header's state_root")
    encodings = tuple(r.encode() for r in receipts)
    root = _root_of_encodings(list(encodings))
    if root != header.receipts_root:
        raise BlockError("receipts differ from the header's receipts_root")
    next_validators = _next_validators(state, header.height)
    if next_validators.hash() != header.next_validators_hash:
        raise BlockError("header next_validators_hash does not match the state after execution")
    return BlockResult(changes, tuple(receipts), encodings, root, validators, next_validators)
