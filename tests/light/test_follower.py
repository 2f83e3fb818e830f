"""The light client follows only what verifies, and moves to another node when one lies."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest

from consensus import smt
from consensus.chainstore import ChainStore
from consensus.state import record_key
from consensus.votes import ValidatorSet
from node.ledger.light_server import LightServer
from node.light import wire
from node.light.errors import NoSourceError, SourceError, TrustStoreError, WireError
from node.light.follower import Follower
from node.light.sources import Source
from node.light.trust import TRUST_FILE, TrustStore
from tests.consensus.ledger_helpers import USER_KEYS, VALIDATOR_KEYS, key, make_genesis, sign_commit
from tests.light.helpers import (
    NEW_SET,
    RECORD_KEY,
    DeadSource,
    LocalSource,
    TamperingSource,
    build_chain,
    replace_header,
    store_of,
)

OUTSIDERS = [key(70), key(71), key(72), key(73)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChainStore]:
    s = store_of(build_chain(blocks=6, set_change_at=2), tmp_path / "chain")
    yield s
    s.close()


def follower(
    store: ChainStore,
    sources: list[Source],
    data_dir: Path | None = None,
    workers: int | None = None,
) -> Follower:
    trust = TrustStore(data_dir, store.genesis) if data_dir is not None else None
    client = trust.open_client() if trust is not None else TrustStore(Path("/nonexistent"), store.genesis).open_client()
    return Follower(client, sources, trust, workers=workers)


async def test_follows_to_the_head_across_a_set_change_and_counts_its_work(store: ChainStore) -> None:
    f = follower(store, [LocalSource(LightServer(None, store))])
    assert await f.sync() == 6
    assert f.header == store.head
    assert f.client.validators == NEW_SET
    figures = f.figures
    assert figures.headers_verified == 6 and figures.set_changes == 1 and not figures.dropped
    # The change in block 2 takes effect at height 4 (2 heights later): a quorum of 3 of 4 signatures is checked
    # for heights 1–3, then 4 of 5 for heights 4–6; verification stops once a quorum checks out.
    assert figures.signatures_verified == 3 * 3 + 3 * 4


async def test_state_reads_are_verified_and_absence_is_proven(store: ChainStore) -> None:
    f = follower(store, [LocalSource(LightServer(None, store))])
    got = await f.get_state(RECORD_KEY)  # syncs as far as the answering node's height first
    assert (got.value, got.height, f.height) == (b"v6", 6, 6)
    missing = await f.get_state(record_key(USER_KEYS[5].address, b"k"))
    assert missing.value is None and f.figures.proofs_verified == 2


class OutsiderCommits(TamperingSource):
    """Re-signs header 3 (AT) with keys outside the validator set (after altering its state root)."""

    AT = 3

    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        if entry.header.height != self.AT:
            return entry
        forged = replace_header(entry, state_root=bytes(32))
        return dataclasses.replace(forged, commit=sign_commit(forged.header, OUTSIDERS[:3]))


class TooFewSigners(TamperingSource):
    """Header 3 (AT) altered and re-signed by only 2 of the 4 real validators (a quorum is 3)."""

    AT = 3

    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        if entry.header.height != self.AT:
            return entry
        forged = replace_header(entry, state_root=bytes(32))
        return dataclasses.replace(forged, commit=sign_commit(forged.header, VALIDATOR_KEYS[:2]))


class WrongValidatorSet(TamperingSource):
    """Header 3 (AT) claims to be signed by an attacker's set (its validators_hash) and is signed by that set."""

    AT = 3

    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        if entry.header.height != self.AT:
            return entry
        attacker = ValidatorSet(tuple(k.public_key for k in OUTSIDERS)).hash()
        forged = replace_header(entry, validators_hash=attacker, next_validators_hash=attacker)
        return dataclasses.replace(forged, commit=sign_commit(forged.header, OUTSIDERS))


class WrongHandOverSet(TamperingSource):
    """At the hand-over (header 3 names the new set), supplies an attacker's set instead of the real one."""

    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        if entry.next_validators is None:
            return entry
        return dataclasses.replace(entry, next_validators=ValidatorSet(tuple(k.public_key for k in OUTSIDERS)))


FORGERS = [
    (OutsiderCommits, "not a validator"),
    (TooFewSigners, "quorum"),
    (WrongValidatorSet, "validator set is not the one its parent named"),
    (WrongHandOverSet, "does not match header"),
]


@pytest.mark.parametrize(("forger", "why"), FORGERS)
async def test_a_forged_header_is_rejected_and_the_next_node_is_used(
    store: ChainStore, forger: type[TamperingSource], why: str
) -> None:
    server = LightServer(None, store)
    honest = LocalSource(server)
    f = follower(store, [forger(server), honest])
    assert await f.sync() == 6
    assert f.header == store.head  # the honest chain, not the forgery
    assert list(f.figures.dropped) == ["forger"] and why in f.figures.dropped["forger"]
    assert [s.name for s in f.sources] == ["honest"]


async def test_with_only_a_forger_nothing_is_trusted_beyond_the_last_good_header(store: ChainStore) -> None:
    f = follower(store, [TooFewSigners(LightServer(None, store))])
    with pytest.raises(NoSourceError, match="quorum"):
        await f.sync()
    assert f.height == 2  # headers 1–2 verified; the forged 3 was not accepted
    with pytest.raises(NoSourceError, match="every node was dropped"):
        await f.sync()


class ForgedValue(TamperingSource):
    def tamper_state(self, answer: wire.StateAnswer) -> wire.StateAnswer:
        return dataclasses.replace(answer, value=b"forged")


class ForgedAbsence(TamperingSource):
    """Claims the key is absent, with a proof that has no leaf."""

    def tamper_state(self, answer: wire.StateAnswer) -> wire.StateAnswer:
        return dataclasses.replace(answer, value=None, proof=smt.Proof(answer.proof.siblings, None))


class ForgedSibling(TamperingSource):
    def tamper_state(self, answer: wire.StateAnswer) -> wire.StateAnswer:
        siblings = (bytes(31) + b"\x01", *answer.proof.siblings[1:])
        return dataclasses.replace(answer, proof=smt.Proof(siblings, answer.proof.leaf))


@pytest.mark.parametrize("forger", [ForgedValue, ForgedAbsence, ForgedSibling])
async def test_a_forged_proof_is_rejected_and_the_next_node_answers(
    store: ChainStore, forger: type[TamperingSource]
) -> None:
    server = LightServer(None, store)
    f = follower(store, [forger(server), LocalSource(server)])
    got = await f.get_state(RECORD_KEY)
    assert got.value == b"v6" and got.source == "honest"
    assert "does not match the state root" in f.figures.dropped["forger"]


class LyingHead(TamperingSource):
    """Claims a head far ahead of what it can back with headers."""

    async def head(self) -> wire.SignedHeader:
        entry = await super().head()
        return replace_header(entry, height=1000)


async def test_a_head_that_cannot_be_backed_by_headers_drops_the_node(store: ChainStore) -> None:
    server = LightServer(None, store)
    f = follower(store, [LyingHead(server), LocalSource(server)])
    assert await f.sync() == 6
    assert "served no header" in f.figures.dropped["forger"]


async def test_an_unreachable_node_is_skipped_but_kept(store: ChainStore) -> None:
    dead = DeadSource()
    f = follower(store, [dead, LocalSource(LightServer(None, store))])
    assert await f.sync() == 6
    assert dead in f.sources and not f.figures.dropped


async def test_a_bad_key_is_the_callers_error_not_a_nodes(store: ChainStore) -> None:
    f = follower(store, [LocalSource(LightServer(None, store))])
    with pytest.raises(WireError):
        await f.get_state(b"")
    assert len(f.sources) == 1


async def test_the_trusted_head_persists_and_the_client_resumes(store: ChainStore, tmp_path: Path) -> None:
    data_dir = tmp_path / "light"
    source = LocalSource(LightServer(None, store))
    first = follower(store, [source], data_dir)
    await first.sync(target=4)
    resumed = follower(store, [source], data_dir)
    assert resumed.height == 4 and resumed.client.validators == NEW_SET
    requests_before = source.requests
    await resumed.sync()
    assert resumed.height == 6 and resumed.figures.headers_verified == 2
    assert source.requests - requests_before == 2  # head, then headers 5–6: nothing re-verified from genesis


async def test_a_trust_file_of_another_network_or_corrupt_is_refused(store: ChainStore, tmp_path: Path) -> None:
    data_dir = tmp_path / "light"
    f = follower(store, [LocalSource(LightServer(None, store))], data_dir)
    await f.sync()
    other = make_genesis(validators=OUTSIDERS)
    with pytest.raises(TrustStoreError, match="another network"):
        TrustStore(data_dir, other).open_client()
    (data_dir / TRUST_FILE).write_bytes(b"\xa1junk")
    with pytest.raises(TrustStoreError, match="corrupt"):
        TrustStore(data_dir, store.genesis).open_client()


class RawHeaders(LocalSource):
    """Answers headers with hand-made CBOR: `mutate` edits the honest answer's decoded value."""

    def __init__(self, server: LightServer, mutate: Callable[[dict[str, Any]], None], canonical: bool = True) -> None:
        super().__init__(server, "raw")
        self.mutate, self.canonical = mutate, canonical

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        doc = cbor2.loads(await self._ask(wire.headers_request(start, end)))
        self.mutate(doc["headers"][0]["header"])
        raw = cbor2.dumps(doc, canonical=True)
        if not self.canonical:  # the same value as an indefinite-length map: valid CBOR, but not canonical
            assert raw[0] == 0xA1
            raw = b"\xbf" + raw[1:] + b"\xff"
        return wire.decode_headers(raw)


def _huge_time(header: dict[str, Any]) -> None:
    header["time_ms"] = 2**70  # a CBOR bignum: parses as an int, but is no ledger value (64-bit at most)


def _nothing(header: dict[str, Any]) -> None:
    return None


@pytest.mark.parametrize(("mutate", "canonical", "why"), [(_huge_time, True, "64-bit"), (_nothing, False, "canonical")])
async def test_answers_that_are_no_ledger_values_drop_the_node_without_a_crash(
    store: ChainStore, mutate: Callable[[dict[str, Any]], None], canonical: bool, why: str
) -> None:
    server = LightServer(None, store)
    f = follower(store, [RawHeaders(server, mutate, canonical), LocalSource(server)])
    assert await f.sync() == 6
    assert why in f.figures.dropped["raw"]


@pytest.fixture
def lagging_store(tmp_path: Path) -> Iterator[ChainStore]:
    """The same chain, only 3 blocks long: an honest node that is behind (or one withholding new blocks)."""
    s = store_of(build_chain(blocks=3, set_change_at=2), tmp_path / "lagging")
    yield s
    s.close()


async def test_a_node_that_is_behind_cannot_hold_the_client_back(store: ChainStore, lagging_store: ChainStore) -> None:
    lagging = LocalSource(LightServer(None, lagging_store), "lagging")
    f = follower(store, [lagging, LocalSource(LightServer(None, store))])
    assert await f.sync() == 6  # the highest head is tried first, whatever the configured order
    assert not f.figures.dropped and len(f.sources) == 2


async def test_a_state_answer_older_than_the_verified_head_is_not_relied_on(
    store: ChainStore, lagging_store: ChainStore
) -> None:
    lagging = LocalSource(LightServer(None, lagging_store), "lagging")
    f = follower(store, [LocalSource(LightServer(None, store))])
    await f.sync()
    f.sources.insert(0, lagging)
    got = await f.get_state(RECORD_KEY)
    assert (got.value, got.height, got.source) == (b"v6", 6, "honest")
    only_stale = follower(store, [LocalSource(LightServer(None, store))])
    await only_stale.sync()
    only_stale.sources = [lagging]
    with pytest.raises(NoSourceError, match="older than our 6"):
        await only_stale.get_state(RECORD_KEY)
    assert only_stale.sources == [lagging]  # behind is not lying: kept for later


# ---- a batch verified on the thread pool -----------------------------------------------------------------------

LONG = 30  # one answer of 30 headers (≥ lightclient.MIN_PARALLEL): its commits are checked on 2 threads


@pytest.fixture
def long_store(tmp_path: Path) -> Iterator[ChainStore]:
    """30 blocks; the set change in block 16 hands over in the middle of the batch too."""
    s = store_of(build_chain(blocks=LONG, set_change_at=16), tmp_path / "long")
    yield s
    s.close()


def hand_over(store: ChainStore) -> int:
    """The height of the header that names a new validator set."""
    for height in range(1, store.height + 1):
        header = store.get_header(height)
        assert header is not None
        if header.next_validators_hash != header.validators_hash:
            return height
    raise AssertionError("no hand-over")


def verifier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ehrnet-verify") and t.is_alive()]


@pytest.mark.parametrize(("forger", "why"), FORGERS)
async def test_a_forged_header_in_the_middle_of_a_parallel_batch_is_rejected(
    long_store: ChainStore, forger: type[TamperingSource], why: str
) -> None:
    server = LightServer(None, long_store)
    middle = type(f"Middle{forger.__name__}", (forger,), {"AT": 11})
    alone = follower(long_store, [middle(server)], workers=2)
    with pytest.raises(NoSourceError, match=why):
        await alone.sync()
    # Everything before the forgery was verified and kept; nothing at or after it was.
    forged_at = 11 if forger is not WrongHandOverSet else hand_over(long_store)
    assert alone.height == forged_at - 1 and alone.figures.headers_verified == forged_at - 1
    f = follower(long_store, [middle(server), LocalSource(server)], workers=2)
    assert await f.sync() == LONG
    assert f.header == long_store.head and why in f.figures.dropped["forger"]
    assert not verifier_threads()  # each sync's pool is stopped when it returns, however it ended


async def test_one_worker_and_a_pool_reach_the_same_head_with_the_same_figures(long_store: ChainStore) -> None:
    server = LightServer(None, long_store)
    one = follower(long_store, [LocalSource(server)], workers=1)
    two = follower(long_store, [LocalSource(server)], workers=2)
    assert await one.sync() == await two.sync() == LONG
    assert one.header == two.header == long_store.head
    assert (one.figures.headers_verified, one.figures.signatures_verified, one.figures.set_changes) == (
        two.figures.headers_verified,
        two.figures.signatures_verified,
        two.figures.set_changes,
    )


class PagedSource(LocalSource):
    """Serves at most `page` headers per answer, so a sync takes several batches."""

    def __init__(self, server: LightServer, page: int) -> None:
        super().__init__(server, "paged")
        self.page = page

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return await super().headers(start, min(end, start + self.page - 1))


class NoCommitAt11(TamperingSource):
    def tamper_entry(self, entry: wire.SignedHeader) -> wire.SignedHeader:
        return dataclasses.replace(entry, commit=None) if entry.header.height == 11 else entry


class SetOnRequest(LocalSource):
    """Leaves the new set out of the hand-over header, so the client asks for it; `fail` makes that ask fail."""

    def __init__(self, server: LightServer, fail: bool) -> None:
        super().__init__(server, "set-on-request")
        self.fail = fail
        self.asked_sets: list[int] = []

    async def headers(self, start: int, end: int) -> list[wire.SignedHeader]:
        return [dataclasses.replace(e, next_validators=None) for e in await super().headers(start, end)]

    async def validators(self, height: int) -> ValidatorSet:
        self.asked_sets.append(height)
        if self.fail:
            raise SourceError("set-on-request: timed out")
        return await super().validators(height)


async def test_what_stops_a_batch_midway_keeps_the_headers_before_it(long_store: ChainStore) -> None:
    server = LightServer(None, long_store)
    f = follower(long_store, [NoCommitAt11(server)], workers=2)
    with pytest.raises(NoSourceError, match="header 11 came without a commit"):
        await f.sync()
    assert f.height == 10
    asked = SetOnRequest(server, fail=False)
    f = follower(long_store, [asked], workers=2)
    assert await f.sync() == LONG and asked.asked_sets == [hand_over(long_store) + 1]
    unreachable = SetOnRequest(server, fail=True)
    f = follower(long_store, [unreachable], workers=2)
    with pytest.raises(NoSourceError, match="timed out"):
        await f.sync()
    assert f.height == hand_over(long_store) - 1 and f.sources == [unreachable]  # skipped, not dropped


async def test_forgeries_mid_batch_are_rejected(long_store: ChainStore) -> None:
    server = LightServer(None, long_store)
    middle = type("MiddleTooFew", (TooFewSigners,), {"AT": 15})
    f = follower(long_store, [PagedSource(server, page=10)], workers=2)
    f.sources.insert(0, middle(server))
    assert await f.sync() == LONG and "quorum" in f.figures.dropped["forger"]
    assert not verifier_threads()
