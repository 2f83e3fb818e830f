from __future__ import annotations

import dataclasses

import pytest

from consensus import codec, smt
from consensus.errors import LightClientError
from consensus.lightclient import LightClient, verify_state_proof
from consensus.state import record_key
from consensus.tx import Tx
from consensus.votes import ValidatorSet
from tests.consensus.ledger_helpers import (
    ADMIN_KEY,
    CHAIN_ID,
    USER_KEYS,
    VALIDATOR_KEYS,
    Chain,
    key,
    record,
    sign_commit,
)

NEW_KEYS = [*VALIDATOR_KEYS[1:], key(60), key(61)]


def chain_with_a_set_change() -> Chain:
    chain = Chain()
    for k in NEW_KEYS:
        chain.keys[k.public_key] = k
    new_set: list[codec.Value] = [k.public_key for k in NEW_KEYS]
    chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "validator_set_change", 0, {"validators": new_set})])
    for n in range(4):
        chain.add_block([record(USER_KEYS[0], n, b"k", b"v%d" % n)])
    return chain


def client_for(chain: Chain) -> LightClient:
    return LightClient(chain.blocks[0].header, ValidatorSet(chain.genesis.validators))


def test_follows_headers_across_a_validator_set_change() -> None:
    chain = chain_with_a_set_change()
    client = client_for(chain)
    new_set = ValidatorSet(tuple(k.public_key for k in NEW_KEYS))
    items = []
    for block, commit in zip(chain.blocks[1:], chain.commits[1:], strict=True):
        assert commit is not None
        changes = block.header.next_validators_hash != block.header.validators_hash
        items.append((block.header, commit, new_set if changes else None))
    assert client.verify_chain(items) == 5
    assert client.validators == new_set and client.header == chain.head


def test_a_set_change_without_the_new_set_stops_the_client() -> None:
    chain = chain_with_a_set_change()
    client = client_for(chain)
    commit1, commit2 = chain.commits[1], chain.commits[2]
    assert commit1 is not None and commit2 is not None
    client.verify(chain.blocks[1].header, commit1)
    with pytest.raises(LightClientError, match="supply it"):
        client.verify(chain.blocks[2].header, commit2)
    with pytest.raises(LightClientError, match="does not match"):
        client.verify(chain.blocks[2].header, commit2, ValidatorSet(chain.genesis.validators))
    assert client.height == 1  # nothing advanced on failure


def test_forged_commits_and_broken_links_are_rejected() -> None:
    chain = Chain()
    block, _, commit = chain.add_block([record(USER_KEYS[0], 0)])
    client = client_for(chain)
    outsiders = sign_commit(block.header, [key(70), key(71), key(72)])
    with pytest.raises(LightClientError, match="not a validator"):
        client.verify(block.header, outsiders)
    too_few = sign_commit(block.header, VALIDATOR_KEYS[:2])
    with pytest.raises(LightClientError, match="quorum"):
        client.verify(block.header, too_few)
    altered = dataclasses.replace(block.header, state_root=bytes(32))
    with pytest.raises(LightClientError, match="commit is for"):
        client.verify(altered, commit)
    client.verify(block.header, commit)
    with pytest.raises(LightClientError, match="does not follow"):
        client.verify(block.header, commit)


def test_state_answers_are_checked_against_verified_roots() -> None:
    chain = chain_with_a_set_change()
    client = client_for(chain)
    new_set = ValidatorSet(tuple(k.public_key for k in NEW_KEYS))
    for block, commit in zip(chain.blocks[1:], chain.commits[1:], strict=True):
        assert commit is not None
        client.verify(block.header, commit, new_set)
    state_key = record_key(USER_KEYS[0].address, b"k")
    proof = smt.prove(chain.state, state_key)
    assert client.verify_state(5, state_key, b"v3", proof)
    assert not client.verify_state(5, state_key, b"v2", proof)
    assert verify_state_proof(chain.head, state_key, b"v3", proof)
    absent = record_key(USER_KEYS[1].address, b"k")
    assert client.verify_state(5, absent, None, smt.prove(chain.state, absent))
    with pytest.raises(LightClientError, match="not among"):
        client.verify_state(99, state_key, b"v3", proof)


def test_trusted_set_must_match_the_trusted_header() -> None:
    chain = Chain()
    with pytest.raises(LightClientError):
        LightClient(chain.blocks[0].header, ValidatorSet((key(80).public_key,)))
