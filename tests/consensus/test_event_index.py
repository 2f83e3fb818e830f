"""The chain store's event index: whole-chain answers in chain order, paging at block boundaries, the patient
and name families, and a one-time rebuild for a store written before the index existed."""

from __future__ import annotations

from pathlib import Path

import lmdb

from consensus.chainstore import EVENT_INDEX_KEY, ChainStore
from consensus.event_index import ContractEvent, EventPosition
from consensus.tx import Tx
from primitives import codec
from primitives.keys import address_of
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain

NOTE = """
def init():
    pass


def note(patient: bytes, text: str):
    ctx.emit("noted", {"patient": address_of(patient), "text": text})
    ctx.emit("seen", {"text": text})
"""
ALICE, BOB = USER_KEYS[5].public_key, USER_KEYS[6].public_key
SENDER = USER_KEYS[0]


def _call(nonce: int, patient: bytes, text: str) -> Tx:
    body: dict[str, codec.Value] = {
        "contract": "notes", "function": "note", "args": [patient, text], "gas_limit": 10**6,
    }  # fmt: skip
    return Tx.create(SENDER, CHAIN_ID, "call", nonce, body)


def _chain(path: Path, blocks: int) -> tuple[ChainStore, Chain, bytes]:
    """Block 1 deploys `notes`; each later block notes ALICE twice and BOB once."""
    chain = Chain()
    store = ChainStore(path, chain.genesis, initial_map_size=1 << 22)
    deploy: dict[str, codec.Value] = {"source": NOTE, "args": [], "gas_limit": 10**6, "name": "notes"}
    block, result, commit = chain.add_block([Tx.create(ADMIN_KEY, CHAIN_ID, "deploy", 0, deploy)])
    store.import_block(block, commit, chain.registry)
    outcome = result.receipts[0].result
    address = outcome.get("address") if isinstance(outcome, dict) else None
    assert isinstance(address, bytes)
    nonce = 0
    for h in range(2, blocks + 1):
        txs = [_call(nonce, ALICE, f"a{h}.1"), _call(nonce + 1, BOB, f"b{h}"), _call(nonce + 2, ALICE, f"a{h}.2")]
        nonce += 3
        block, _, commit = chain.add_block(txs)
        store.import_block(block, commit, chain.registry)
    return store, chain, address


def _texts(found: list[tuple[EventPosition, bytes, ContractEvent]]) -> list[str]:
    texts = []
    for _, _, event in found:
        assert isinstance(event.data, dict)
        texts.append(str(event.data["text"]))
    return texts


def test_whole_chain_newest_first(tmp_path: Path) -> None:
    store, _, notes = _chain(tmp_path / "chain", 5)
    found, more = store.events(notes, "noted", limit=1000)
    assert more is None
    assert _texts(found) == [t for h in (5, 4, 3, 2) for t in (f"a{h}.2", f"b{h}", f"a{h}.1")]
    assert [position[0] for position, _, _ in found] == [5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2]
    every = store.events(notes, limit=1000)[0]
    assert len(every) == 24 and {e.name for _, _, e in every} == {"noted", "seen"}
    store.close()


def test_patient_and_range_filters(tmp_path: Path) -> None:
    store, _, notes = _chain(tmp_path / "chain", 6)
    alice = address_of(ALICE)
    by_name, _ = store.events(notes, "noted", alice, limit=1000)
    assert _texts(by_name) == [t for h in (6, 5, 4, 3, 2) for t in (f"a{h}.2", f"a{h}.1")]
    by_contract, _ = store.events(notes, None, alice, limit=1000)
    assert _texts(by_contract) == _texts(by_name)  # `seen` has no patient
    ranged, _ = store.events(notes, "noted", alice, from_height=3, to_height=4, limit=1000)
    assert _texts(ranged) == ["a4.2", "a4.1", "a3.2", "a3.1"]
    assert store.events(notes, "other", limit=10) == ([], None)
    assert store.events(b"\x01" * 20, "noted", limit=10) == ([], None)
    store.close()


def test_pages_follow_each_other_exactly_even_inside_a_block(tmp_path: Path) -> None:
    store, _, notes = _chain(tmp_path / "chain", 8)
    whole, more = store.events(notes, "noted", limit=1000)
    assert more is None and len(whole) == 21
    pages: list[tuple[EventPosition, bytes, ContractEvent]] = []
    before: EventPosition | None = None
    while True:
        page, before = store.events(notes, "noted", before=before, limit=4)  # 3 events per block: pages split blocks
        assert len(page) == 4 or before is None
        pages += page
        if before is None:
            break
    assert pages == whole


def test_a_store_written_without_the_index_is_indexed_when_opened(tmp_path: Path) -> None:
    store, chain, notes = _chain(tmp_path / "chain", 4)
    expected = store.events(notes, "noted", limit=1000)
    store.close()
    env = lmdb.open(str(tmp_path / "chain"), max_dbs=16, subdir=True)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"events", txn=txn), delete=False)
        txn.delete(EVENT_INDEX_KEY, db=env.open_db(b"meta", txn=txn))
    env.close()
    reopened = ChainStore(tmp_path / "chain", chain.genesis)
    assert reopened.events(notes, "noted", limit=1000) == expected
    reopened.close()
