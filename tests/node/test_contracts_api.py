"""The contract HTTP routes over a real chain store (no network): deploy, ABI, views, receipts, events, proofs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from consensus import smt
from consensus.chainstore import ChainStore
from consensus.contract_txs import contract_state_key
from consensus.genesis import Genesis
from consensus.tx import Tx
from consensus.vm import contract_address
from consensus.vm.jsonvalues import from_json, to_json
from node.api.contracts import contract_routes
from node.api.server import json_errors
from primitives import codec
from primitives.keys import address_of
from tests.consensus.ledger_helpers import ADMIN_KEY, CHAIN_ID, USER_KEYS, Chain
from tests.node.store_ledger import StoreLedger

NOTE = """
def init(owner: bytes):
    ctx.set("owner", owner)


def note(patient: bytes, text: str):
    ctx.set(patient, text)
    ctx.emit("noted", {"patient": address_of(patient), "text": text})


def read(patient: bytes) -> str:
    return ctx.get(patient, "")


def boom():
    revert("boom")
"""
PATIENT, OTHER = USER_KEYS[5], USER_KEYS[6]


class StubLedger(StoreLedger):
    """The ledger over a real ChainStore; submitted txs are collected, and `durable` notes how many there were."""

    def __init__(self, genesis: Genesis, store: ChainStore) -> None:
        super().__init__(genesis, store)
        self.durable_after = 0  # transactions submitted when the route last waited for the journal

    async def durable(self) -> None:
        self.durable_after = len(self.submitted)


def _call(sender: Any, nonce: int, contract: str | bytes, function: str, args: list[codec.Value]) -> Tx:
    body: dict[str, codec.Value] = {"contract": contract, "function": function, "args": args, "gas_limit": 10**6}
    return Tx.create(sender, CHAIN_ID, "call", nonce, body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], StubLedger, Chain]]:
    chain = Chain()
    store = ChainStore(tmp_path / "chain", chain.genesis, initial_map_size=1 << 20)
    deploy: dict[str, codec.Value] = {
        "source": NOTE,
        "args": [ADMIN_KEY.public_key],
        "gas_limit": 10**6,
        "name": "notes",
    }
    blocks = [
        [Tx.create(ADMIN_KEY, CHAIN_ID, "deploy", 0, deploy)],
        [
            _call(USER_KEYS[0], 0, "notes", "note", [PATIENT.public_key, "first"]),
            _call(USER_KEYS[0], 1, "notes", "note", [OTHER.public_key, "other"]),
            _call(USER_KEYS[0], 2, "notes", "boom", []),
        ],
    ]
    for txs in blocks:
        block, _, commit = chain.add_block(txs)
        store.import_block(block, commit, chain.registry)
    ledger = StubLedger(chain.genesis, store)
    app = web.Application(middlewares=[json_errors])
    app.add_routes(contract_routes(ledger))
    async with TestClient(TestServer(app)) as client:
        yield client, ledger, chain
    store.close()


Api = tuple[TestClient[web.Request, web.Application], StubLedger, Chain]


async def test_abi_by_name_and_address_and_unknown_contract(api: Api) -> None:
    client, _, _ = api
    by_name = await (await client.get("/contracts/notes/abi")).json()
    assert {f["name"] for f in by_name["functions"]} == {"note", "read", "boom"}
    by_address = await client.get(f"/contracts/{by_name['address']}/abi")
    assert (await by_address.json())["code_hash"] == hashlib.sha256(NOTE.encode()).hexdigest()
    assert (await (await client.get("/contracts/ehr/abi")).json())["init"]["name"] == "init"
    missing = await client.get("/contracts/nothing/abi")
    assert missing.status == 404 and "no contract named" in (await missing.json())["error"]
    bad = await client.get("/contracts/Not%20A%20Name/abi")
    assert bad.status == 400


async def test_views_run_on_the_final_state_and_name_their_problems(api: Api) -> None:
    client, _, _ = api
    args = to_json([PATIENT.public_key])
    ok = await client.post("/contracts/notes/call", json={"function": "read", "args": args})
    assert ok.status == 200 and (await ok.json())["return"] == "first"
    reverted = await client.post("/contracts/notes/call", json={"function": "boom", "args": []})
    assert reverted.status == 422 and "boom" in (await reverted.json())["error"]
    writes = await client.post("/contracts/notes/call", json={"function": "note", "args": to_json([b"k", "x"])})
    assert writes.status == 422 and (await writes.json())["status"] == "failed"
    unknown = await client.post("/contracts/notes/call", json={"function": "nope", "args": []})
    assert unknown.status == 404 and "nope" in (await unknown.json())["error"]
    arity = await client.post("/contracts/notes/call", json={"function": "read", "args": []})
    assert arity.status == 400 and "takes 1 arguments" in (await arity.json())["error"]
    floats = await client.post("/contracts/notes/call", json={"function": "read", "args": [1.5]})
    assert floats.status == 400 and "integers" in (await floats.json())["error"]
    policy = await client.post(
        "/contracts/ehr/call", json={"function": "policy_list", "args": to_json([PATIENT.public_key])}
    )
    assert policy.status == 422  # not a registered patient: the EHR contract refuses, as a view


async def test_receipts_carry_gas_status_return_and_events(api: Api) -> None:
    client, _, chain = api
    note, _, boom = chain.blocks[2].txs
    good = await (await client.get(f"/receipts/{note.hash.hex()}")).json()
    assert good["status"] == "ok" and good["gas_used"] > 0 and good["height"] == 2
    assert good["events"] == [
        {
            "name": "noted",
            "contract": good["result"]["address"],
            "data": to_json({"patient": address_of(PATIENT.public_key), "text": "first"}),
        }
    ]
    bad = await (await client.get(f"/receipts/{boom.hash.hex()}")).json()
    assert bad["status"] == "failed" and bad["result"]["vm_status"] == "reverted" and "boom" in bad["error"]
    assert bad["gas_used"] > 0 and bad["events"] == []
    missing = await client.get(f"/receipts/{'00' * 32}")
    assert missing.status == 404
    assert (await client.get("/receipts/zz")).status == 400


async def test_events_filter_by_contract_patient_and_name(api: Api) -> None:
    client, _, _ = api
    everything = await (await client.get("/events")).json()
    assert [e["name"] for e in everything["events"]] == ["noted", "noted"] and everything["complete"]
    by_pk = await (await client.get(f"/events?contract=notes&patient={PATIENT.public_key.hex()}")).json()
    by_uid = await (await client.get(f"/events?patient={address_of(PATIENT.public_key).hex()}")).json()
    assert by_pk["events"] == by_uid["events"] and len(by_pk["events"]) == 1
    assert from_json(by_pk["events"][0]["data"]) == {"patient": address_of(PATIENT.public_key), "text": "first"}
    assert (await (await client.get("/events?name=other")).json())["events"] == []
    limited = await (await client.get("/events?limit=1")).json()
    assert len(limited["events"]) == 1 and not limited["complete"]
    assert (await client.get("/events?limit=0")).status == 400
    assert (await client.get("/events?contract=nothing")).status == 404
    assert (await client.get("/events?patient=abcd")).status == 400
    # One contract's events come from the event index, a page at a time, exactly.
    first = await (await client.get("/events?contract=notes&limit=1")).json()
    assert not first["complete"] and first["next_before"] == "2.1.0" and first["from_height"] == 0
    rest = await (await client.get(f"/events?contract=notes&limit=1&before={first['next_before']}")).json()
    assert rest["complete"] and rest["next_before"] is None
    assert [e["data"] for e in first["events"] + rest["events"]] == [e["data"] for e in everything["events"]]
    for bad in ("1.2", "a.b.c", "1.2.99999999"):
        refused = await client.get(f"/events?contract=notes&before={bad}")
        assert refused.status == 400 and "before" in (await refused.json())["error"]


async def test_proofs_of_presence_and_absence_verify_against_the_header(api: Api) -> None:
    client, _, chain = api
    address = bytes.fromhex((await (await client.get("/contracts/notes/abi")).json())["address"])
    header = chain.head
    for key, expected in ((PATIENT.public_key, "first"), (b"never-written", None)):
        doc = await (await client.get(f"/state/proof?contract=notes&key={key.hex()}")).json()
        assert doc["height"] == header.height and doc["state_root"] == header.state_root.hex()
        value = None if doc["value"] is None else bytes.fromhex(doc["value"])
        assert (None if value is None else codec.decode(value)) == expected
        proof = smt.Proof.from_value(codec.decode(bytes.fromhex(doc["proof"])))
        assert smt.verify_proof(header.state_root, contract_state_key(address, key), value, proof)
        assert bytes.fromhex(doc["state_key"]) == contract_state_key(address, key)
    assert (await client.get("/state/proof?key=00")).status == 400
    assert (await client.get("/state/proof?contract=notes&key=xyz")).status == 400
    assert (await client.get("/state/proof?contract=notes")).status == 400
    assert (await client.get("/state/proof?contract=nothing&key=00")).status == 404


async def test_post_contracts_takes_only_deploy_transactions(api: Api) -> None:
    client, ledger, _ = api
    body: dict[str, codec.Value] = {"source": NOTE, "args": [ADMIN_KEY.public_key], "gas_limit": 10**6}
    tx = Tx.create(ADMIN_KEY, CHAIN_ID, "deploy", 1, body)
    answer = await (await client.post("/contracts", json={"tx": tx.raw.hex()})).json()
    expected = contract_address(ADMIN_KEY.address, hashlib.sha256(NOTE.encode()).digest(), 1)
    assert answer == {"hash": tx.hash.hex(), "address": expected.hex(), "name": None}
    assert ledger.submitted == [tx] and ledger.durable_after == 1  # answered only once it was on disk
    call = _call(USER_KEYS[0], 3, "notes", "boom", [])
    refused = await client.post("/contracts", json={"tx": call.raw.hex()})
    assert refused.status == 400 and "POST /tx" in (await refused.json())["error"]
    garbage = await client.post("/contracts", json={"tx": "00ff"})
    assert garbage.status == 400 and "tx:" in (await garbage.json())["error"]
    assert (await client.post("/contracts", json={})).status == 400
