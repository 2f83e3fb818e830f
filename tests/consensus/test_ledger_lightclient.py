from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable

import pytest

from consensus import smt
from consensus.block import Commit, Header
from consensus.errors import LightClientError
from consensus.lightclient import MIN_PARALLEL, CommitVerifier, LightClient, verify_state_proof
from consensus.state import record_key
from consensus.tx import Tx
from consensus.votes import ValidatorSet
from primitives import codec
from primitives.keys import SigningKey
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


# ---- batches checked on a thread pool: the outcome is the sequential one, wherever the bad header sits ------


BATCH = 40  # ≥ MIN_PARALLEL, so the pool is used; header 2 hands over to NEW_KEYS, which sign from height 3


def long_chain() -> tuple[Chain, list[tuple[Header, Commit, ValidatorSet | None]]]:
    chain = chain_with_a_set_change()
    while chain.head.height < BATCH:
        chain.add_block([])
    new_set = ValidatorSet(tuple(k.public_key for k in NEW_KEYS))
    items: list[tuple[Header, Commit, ValidatorSet | None]] = []
    for block, commit in zip(chain.blocks[1:], chain.commits[1:], strict=True):
        assert commit is not None
        changes = block.header.next_validators_hash != block.header.validators_hash
        items.append((block.header, commit, new_set if changes else None))
    return chain, items


def signers_of(height: int) -> list[SigningKey]:
    return VALIDATOR_KEYS if height < 3 else NEW_KEYS


def forge_outsiders(item: Item) -> Item:
    header = dataclasses.replace(item[0], state_root=bytes(32))
    return header, sign_commit(header, [key(70), key(71), key(72), key(73)]), item[2]


def forge_too_few(item: Item) -> Item:
    header = dataclasses.replace(item[0], state_root=bytes(32))
    return header, sign_commit(header, signers_of(header.height)[:2]), item[2]


def forge_bad_signature(item: Item) -> Item:
    header, commit, following = item
    first = commit.votes[0]
    bad = dataclasses.replace(first, signature=bytes([first.signature[0] ^ 1]) + first.signature[1:])
    return header, dataclasses.replace(commit, votes=(bad, *commit.votes[1:])), following


def forge_wrong_set(item: Item) -> Item:
    attacker = ValidatorSet(tuple(key(70 + i).public_key for i in range(4))).hash()
    header = dataclasses.replace(item[0], validators_hash=attacker, next_validators_hash=attacker)
    return header, sign_commit(header, [key(70 + i) for i in range(4)]), item[2]


def forge_stale_commit(item: Item) -> Item:
    return dataclasses.replace(item[0], state_root=bytes(32)), item[1], item[2]


Item = tuple[Header, Commit, ValidatorSet | None]
FORGERIES = [
    (forge_outsiders, "not a validator"),
    (forge_too_few, "quorum"),
    (forge_bad_signature, "invalid precommit signature"),
    (forge_wrong_set, "validator set is not the one its parent named"),
    (forge_stale_commit, "commit is for"),
]


def outcome(client: LightClient, items: list[Item], verifier: CommitVerifier | None) -> tuple[int, str]:
    try:
        client.verify_chain(items, verifier)
    except LightClientError as exc:
        return client.height, str(exc)
    return client.height, ""


@pytest.mark.parametrize(("forge", "why"), FORGERIES)
@pytest.mark.parametrize("at", [1, 2, 3, 21, 39, 40])  # first, hand-over, first of the new set, middle, last
def test_a_forged_header_in_a_parallel_batch_stops_the_client_just_before_it(
    forge: Callable[[Item], Item], why: str, at: int
) -> None:
    chain, items = long_chain()
    items[at - 1] = forge(items[at - 1])
    sequential = outcome(client_for(chain), items, None)
    with CommitVerifier(4) as verifier:
        parallel = outcome(client_for(chain), items, verifier)
    assert parallel == sequential
    assert parallel[0] == at - 1 and why in parallel[1] and f"header {at}" in parallel[1]


def test_a_wrong_hand_over_set_in_a_parallel_batch_is_refused_after_its_commit() -> None:
    chain, items = long_chain()
    header, commit, _ = items[1]  # header 2 names the new set
    items[1] = (header, commit, ValidatorSet(tuple(key(70 + i).public_key for i in range(4))))
    with CommitVerifier(2) as verifier:
        assert outcome(client_for(chain), items, verifier) == (1, "supplied validator set does not match header 2")
    # Its own commit is checked first, as verify does: a forged commit there is what is reported.
    items[1] = forge_too_few(items[1])
    with CommitVerifier(2) as verifier:
        height, why = outcome(client_for(chain), items, verifier)
    assert height == 1 and "quorum" in why


def test_the_earliest_of_several_forgeries_is_reported_whatever_the_threads_do() -> None:
    chain, items = long_chain()
    rng = random.Random(7)
    for _ in range(10):
        forged = list(items)
        for at in rng.sample(range(1, BATCH + 1), 3):
            forge, _ = rng.choice(FORGERIES)
            forged[at - 1] = forge(forged[at - 1])
        with CommitVerifier(4) as verifier:
            assert outcome(client_for(chain), forged, verifier) == outcome(client_for(chain), forged, None)


def test_an_honest_batch_verifies_on_the_pool_and_the_pool_stops_with_its_verifier() -> None:
    chain, items = long_chain()
    client = client_for(chain)
    with CommitVerifier(2) as verifier:
        assert client.verify_chain(items, verifier) == BATCH
        assert verifier_threads()  # the batch was big enough to go to the pool
    assert client.header == chain.head
    assert not verifier_threads()
    with pytest.raises(RuntimeError, match="closed"):
        verifier.submit(client.plan([]).steps)


def test_small_batches_and_one_worker_start_no_thread() -> None:
    chain, items = long_chain()
    client = client_for(chain)
    with CommitVerifier(4) as verifier:
        client.verify_chain(items[: MIN_PARALLEL - 1], verifier)
        assert not verifier_threads()
    with CommitVerifier(1) as verifier:
        assert client.verify_chain(items[MIN_PARALLEL - 1 :], verifier) == BATCH
        assert not verifier_threads()


def test_a_cancelled_batch_settles_and_closing_leaves_no_thread() -> None:
    chain, items = long_chain()
    client = client_for(chain)
    verifier = CommitVerifier(2)
    pending = verifier.submit(client.plan(items).steps)
    pending.cancel()  # the waiter gave up (a cancelled sync): the slices stop at their next header
    verifier.close()
    assert pending.cancelled() or pending.done()
    assert not verifier_threads()
    assert client.height == 0  # nothing is applied without apply


def verifier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ehrnet-verify") and t.is_alive()]
