"""Light-client verification: follow the chain from headers and commits alone, and check state answers.

Trust starts from one header and the validator set that signs the next height (genesis block 0 and the genesis
validators, or a checkpoint). Each next header must link to the last verified one and carry a commit with a
quorum of valid precommits from the set the previous header named (`next_validators_hash`); when a header
names a new set, the client must be given that set, which it checks against the hash before trusting it.
A state answer (value + proof) is then checked against the state root of a verified header, without trusting
the full node that served it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from consensus import smt
from consensus.block import Commit, Header, validate_link, verify_commit
from consensus.errors import BlockError, LightClientError
from consensus.votes import ValidatorSet

REMEMBERED_ROOTS = 1024


def verify_state_proof(header: Header, key: bytes, value: bytes | None, proof: smt.Proof) -> bool:
    """True iff `proof` shows `key` -> `value` (None: absent) in the state after block `header`."""
    return smt.verify_proof(header.state_root, key, value, proof)


class LightClient:
    def __init__(self, trusted: Header, next_validators: ValidatorSet) -> None:
        if next_validators.hash() != trusted.next_validators_hash:
            raise LightClientError("the trusted validator set does not match the trusted header")
        self._header = trusted
        self._validators = next_validators
        self._roots: OrderedDict[int, bytes] = OrderedDict({trusted.height: trusted.state_root})

    @property
    def header(self) -> Header:
        """The latest verified header."""
        return self._header

    @property
    def height(self) -> int:
        return self._header.height

    @property
    def validators(self) -> ValidatorSet:
        """The set that must sign the next height."""
        return self._validators

    def verify(self, header: Header, commit: Commit, next_validators: ValidatorSet | None = None) -> None:
        """Verify the next header and advance; raises LightClientError (the client state is then unchanged)."""
        try:
            validate_link(header, self._header)
            verify_commit(
                commit,
                chain_id=header.chain_id,
                height=header.height,
                block_hash=header.hash,
                validators=self._validators,
            )
        except BlockError as exc:
            raise LightClientError(f"header {header.height}: {exc}") from exc
        following = self._validators
        if header.next_validators_hash != header.validators_hash:
            if next_validators is None:
                raise LightClientError(f"header {header.height} hands over to a new validator set; supply it")
            if next_validators.hash() != header.next_validators_hash:
                raise LightClientError(f"supplied validator set does not match header {header.height}")
            following = next_validators
        self._header, self._validators = header, following
        self._roots[header.height] = header.state_root
        if len(self._roots) > REMEMBERED_ROOTS:
            self._roots.popitem(last=False)

    def verify_chain(self, items: Iterable[tuple[Header, Commit, ValidatorSet | None]]) -> int:
        """Verify consecutive (header, commit, new set or None); returns the height reached."""
        for header, commit, next_validators in items:
            self.verify(header, commit, next_validators)
        return self.height

    def verify_state(self, height: int, key: bytes, value: bytes | None, proof: smt.Proof) -> bool:
        """Check a state answer against a recently verified height's state root."""
        root = self._roots.get(height)
        if root is None:
            raise LightClientError(f"height {height} is not among the verified headers this client remembers")
        return smt.verify_proof(root, key, value, proof)
