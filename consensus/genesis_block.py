"""Block 0 and the initial state, derived from the genesis document alone, so every node computes the same
block 0 and nobody signs it.

Assembling them needs the genesis contracts' deployment (consensus/contract_txs.py) and the member list
(consensus/members.py); those build on block execution, which reads the genesis parameters
(consensus/genesis.py), so the assembly sits above all of them rather than in genesis.py.
"""

from __future__ import annotations

from consensus.block import EMPTY_ROOT, NO_PROPOSER, Block, Header
from consensus.contract_txs import deploy_genesis_contracts
from consensus.genesis import Genesis
from consensus.members import set_members
from consensus.state import MemoryState, StateChanges, WorkingState, set_admins, set_validator_schedule
from consensus.votes import ValidatorSet


def build_genesis(genesis: Genesis) -> tuple[Block, StateChanges]:
    """Block 0 and the initial state: the validator set from height 1 on, the admin set, and the EHR contract
    deployed under the name `ehr` with the genesis admins as its admins, so every chain has it."""
    state = WorkingState(MemoryState())
    set_validator_schedule(state, [(1, genesis.validators)])
    set_admins(state, genesis.admins)
    if genesis.members:
        set_members(state, dict(genesis.members))
    deploy_genesis_contracts(state, genesis)
    changes = state.commit()
    validators_hash = ValidatorSet(genesis.validators).hash()
    header = Header(
        chain_id=genesis.chain_id,
        height=0,
        parent_hash=genesis.hash(),
        time_ms=genesis.initial_time_ms,
        proposer=NO_PROPOSER,
        tx_root=EMPTY_ROOT,
        receipts_root=EMPTY_ROOT,
        state_root=changes.root,
        validators_hash=validators_hash,
        next_validators_hash=validators_hash,
    )
    return Block(header, ()), changes
