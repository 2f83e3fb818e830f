"""Genesis: the chain's identity, first validator and admin sets, and consensus parameters.

The genesis hash names the chain together with the chain ID: two nodes whose genesis hashes differ are on
different chains and the handshake disconnects them. Block 0 is derived from genesis alone
(consensus/genesis_block.py), so every node computes the same block 0 and nobody signs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from consensus.errors import GenesisError
from consensus.members import members_from_value, members_to_value
from primitives import codec

# State keys are LMDB keys (at most 511 bytes); a record key gets a 25-byte "rec/<address>/" prefix.
MAX_RECORD_KEY_LIMIT = 400

# Params added after chains existed, with the value every older chain implicitly had: a field at this value is
# left out of the canonical form, so the genesis hash of a chain made before the field existed does not change.
LEGACY_DEFAULTS: dict[str, int | str] = {"vm_version": 1, "ns_per_gas": 100, "accounts": "open"}
# Params that are text, with the values they may take (every other param is a positive integer).
TEXT_PARAMS: dict[str, tuple[str, ...]] = {"accounts": ("open", "allowlist")}

# The block-time rule (docs/CONSENSUS.md "Block execution bound"), checked from vm_version 2 on: a block is
# executed twice in sequence before anyone can prevote it (the proposer builds it, then every validator re-runs
# it), so its worst-case execution may take at most this share of the shortest propose timeout a node uses.
PROPOSE_TIMEOUT_MS = 1500  # the ledger service's round-0 propose timeout
BLOCK_EXECUTION_SHARE = (1, 2)

# Params of a network made now (node.cluster.config.generate_network: local clusters, the demo, the benchmarks): VM
# version 2, and gas bounds inside the block-time rule at 180 ns per gas, about the worst class's ns per gas that
# bench.vm_calibration measures on the reference machine under load (docs/VM.md "Calibration"). max_tx_gas stays
# at the 2,000,000 the node's own EHR calls ask for.
NEW_NETWORK_PARAMS: dict[str, int] = {
    "vm_version": 2,
    "max_tx_gas": 2_000_000,
    "max_block_gas": 2_000_000,
    "ns_per_gas": 180,
}


@dataclass(frozen=True)
class Params:
    """Consensus parameters fixed at genesis; every node must use the same values."""

    max_tx_bytes: int = 4096
    max_block_txs: int = 10_000
    max_block_bytes: int = 4 * 1024 * 1024
    max_record_key_bytes: int = 128
    max_record_value_bytes: int = 1024
    # Set changes take effect this many heights after the block that holds them (Tendermint uses 2, so the
    # set that signs a height is known before the height starts).
    validator_change_delay: int = 2
    # Distinct admins that must send the same set change before it happens (1 = any admin alone).
    admin_threshold: int = 1
    max_validators: int = 100
    max_evidence_age: int = 100_000
    # Contract gas (docs/VM.md "Gas"; 1 gas ~ 100 ns of interpreter time at worst): a transaction's gas_limit may
    # not exceed max_tx_gas (~0.5 s), and a block stops taking transactions once it used max_block_gas (~2 s at
    # worst; ~2,000 set_policy calls), so a proposal always executes well inside the consensus timeouts.
    max_tx_gas: int = 5_000_000
    max_block_gas: int = 20_000_000
    # The VM rules (consensus/vm/versions.py) from height 1 until an admin `set_vm_version` switches them.
    vm_version: int = 1
    # Assumed worst-case interpreter time per unit of gas on the slowest validator, in ns: what the block-time
    # rule multiplies gas by (bench.vm_calibration measures it).
    ns_per_gas: int = 100
    # Who may send transactions (consensus/accounts.py): "open" (any key) or "allowlist" (admins, validators and
    # the accounts admins allowlisted; a block holding another sender's transaction is invalid).
    accounts: str = "open"

    def __post_init__(self) -> None:
        for name, allowed in TEXT_PARAMS.items():
            if getattr(self, name) not in allowed:
                raise GenesisError(f"param {name} must be one of {', '.join(allowed)}")

    def worst_block_execution_ms(self) -> float:
        """Longest a block's execution can take under the assumed ns_per_gas: a valid block uses at most
        max_block_gas, and a validator stops executing a block at the first transaction that crosses it."""
        return (self.max_block_gas + self.max_tx_gas) * self.ns_per_gas / 1e6

    def to_value(self) -> codec.Value:
        value = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v for k, v in value.items() if LEGACY_DEFAULTS.get(k) != v}

    @classmethod
    def from_value(cls, value: codec.Value) -> Params:
        if not isinstance(value, dict):
            raise GenesisError("params must be a map")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise GenesisError(f"unknown params: {sorted(unknown)}")
        kwargs: dict[str, int | str] = {}
        for name, item in value.items():
            if name in TEXT_PARAMS:
                if item not in TEXT_PARAMS[name]:
                    raise GenesisError(f"param {name} must be one of {', '.join(TEXT_PARAMS[name])}")
                kwargs[name] = str(item)
                continue
            if not isinstance(item, int) or isinstance(item, bool) or item < 1:
                raise GenesisError(f"param {name} must be a positive integer")
            kwargs[name] = item
        return cls(**kwargs)  # type: ignore[arg-type]  # each name's type was checked above


def check_vm_params(params: Params, propose_timeout_ms: int = PROPOSE_TIMEOUT_MS) -> None:
    """The VM version must be one this node knows, and from version 2 on a full block must execute well inside
    the propose timeout: (max_block_gas + max_tx_gas) × ns_per_gas ≤ share × propose timeout."""
    # Imported here: the VM package is only needed once a genesis is checked.
    from consensus.vm.versions import rules_for

    try:
        rules = rules_for(params.vm_version)
    except ValueError as exc:
        raise GenesisError(str(exc)) from None
    if not rules.strict_block_gas:
        return  # version 1 chains predate the rule; their params stay as they were made
    if params.max_tx_gas > params.max_block_gas:
        # A transaction that may use more than a whole block could never be included, and the proposer stops at
        # the first one that does not fit: it would hold every transaction behind it.
        raise GenesisError(f"max_tx_gas {params.max_tx_gas} may not exceed max_block_gas {params.max_block_gas}")
    numerator, denominator = BLOCK_EXECUTION_SHARE
    budget_ms = propose_timeout_ms * numerator / denominator
    worst_ms = params.worst_block_execution_ms()
    if worst_ms > budget_ms:
        raise GenesisError(
            f"(max_block_gas {params.max_block_gas} + max_tx_gas {params.max_tx_gas}) × ns_per_gas "
            f"{params.ns_per_gas} = {worst_ms:.0f} ms of execution, more than {numerator}/{denominator} of the "
            f"{propose_timeout_ms} ms propose timeout ({budget_ms:.0f} ms): lower max_block_gas or max_tx_gas"
        )


def _keys(value: object, name: str) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise GenesisError(f"{name} must be a non-empty list of 32-byte public keys")
    keys: list[bytes] = []
    for item in value:
        raw = bytes.fromhex(item) if isinstance(item, str) and len(item) == 64 else item
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise GenesisError(f"{name} must be a non-empty list of 32-byte public keys")
        keys.append(raw)
    if len(set(keys)) != len(keys):
        raise GenesisError(f"{name} contains a key twice")
    return tuple(keys)


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    validators: tuple[bytes, ...]
    admins: tuple[bytes, ...]
    initial_time_ms: int
    params: Params = field(default_factory=Params)
    # The mesh's members (consensus/membership.py): node key → sorted roles. Empty on chains made before members
    # existed; left out of the canonical form when empty, so those chains keep their genesis hash.
    members: tuple[tuple[bytes, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.chain_id or not isinstance(self.chain_id, str):
            raise GenesisError("chain_id must be a non-empty string")
        _keys(self.validators, "validators")
        _keys(self.admins, "admins")
        if len(self.validators) > self.params.max_validators:
            raise GenesisError(f"{len(self.validators)} validators exceed max_validators")
        if self.params.max_record_key_bytes > MAX_RECORD_KEY_LIMIT:
            raise GenesisError(f"max_record_key_bytes may be at most {MAX_RECORD_KEY_LIMIT} (LMDB key size limit)")
        if self.initial_time_ms < 0:
            raise GenesisError("initial_time_ms must be non-negative")
        check_vm_params(self.params)
        if self.members:
            if len({key for key, _ in self.members}) != len(self.members):
                raise GenesisError("members lists a key twice")
            checked = members_from_value(members_to_value(dict(self.members)))  # checks keys and roles
            object.__setattr__(self, "members", tuple(sorted(checked.items())))  # one canonical order

    def to_value(self) -> codec.Value:
        value: dict[str, codec.Value] = {
            "chain_id": self.chain_id,
            "validators": list(self.validators),
            "admins": list(self.admins),
            "initial_time_ms": self.initial_time_ms,
            "params": self.params.to_value(),
        }
        if self.members:
            value["members"] = members_to_value(dict(self.members))
        return value

    def hash(self) -> bytes:
        return codec.digest(self.to_value())

    def to_json(self) -> dict[str, object]:
        """JSON form for the network config (keys as hex)."""
        value = self.to_value()
        assert isinstance(value, dict)
        doc: dict[str, object] = {**value, "validators": [v.hex() for v in self.validators]}
        doc["admins"] = [a.hex() for a in self.admins]
        if self.members:
            doc["members"] = [{"key": key.hex(), "roles": list(roles)} for key, roles in sorted(self.members)]
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Genesis:
        """Parse the JSON form (or the decoded canonical value); malformed input raises GenesisError."""
        if not isinstance(doc, dict):
            raise GenesisError("genesis must be an object")
        chain_id, initial_time = doc.get("chain_id"), doc.get("initial_time_ms")
        if not isinstance(chain_id, str):
            raise GenesisError("chain_id must be a string")
        if not isinstance(initial_time, int) or isinstance(initial_time, bool):
            raise GenesisError("initial_time_ms must be an integer")
        params = Params.from_value(doc.get("params", {}))
        members: tuple[tuple[bytes, tuple[str, ...]], ...] = ()
        if "members" in doc:
            members = tuple(sorted(members_from_value(doc["members"]).items()))
        return cls(
            chain_id,
            _keys(doc.get("validators"), "validators"),
            _keys(doc.get("admins"), "admins"),
            initial_time,
            params,
            members,
        )
