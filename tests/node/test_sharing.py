"""The EHR sharing protocol on a real cluster (paper Sec. III-B): no plaintext at rest, replayed requests refused
and relayed ones harmless, revocation and expiry effective on the next request, break-glass honoured within its
scope and window, nothing recoverable after erasure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from consensus.tx import Tx
from node.cli.admin import main as admin_main
from node.client import AsyncNodeClient, NodeRefused
from node.cluster.local import Cluster
from node.cluster.network_init import admin_key_path
from node.ehr import wire
from node.ehr.sharing_client import EhrUser, SharingError
from node.p2p.bridge import HostConfig, P2PHost
from node.p2p.identity import public_key_of_peer_id
from offload.client import run_local
from offload.context import RecordContext
from offload.fhir import build_record, parse_record, patient_id
from offload.workload import TREMOR, make_payload
from primitives.keys import SigningKey
from storage.address import CID
from storage.errors import KeyStoreError
from storage.keystore import KeyStore
from tests.harness import await_until, running_cluster

pytestmark = pytest.mark.cluster

MARKER = "marker7f3a9c"  # a device id that would show up in any stored plaintext


@dataclass
class World:
    cluster: Cluster
    admin: EhrUser
    patient: EhrUser
    doctor: EhrUser
    manager_peer: str
    patient_host: P2PHost
    doctor_host: P2PHost


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    with running_cluster(tmp_path, n=4) as cluster:
        records = cluster.records
        manager_peer = records["node1"].peer_id
        async with AsyncNodeClient.connect(records["node2"].http_url) as api:
            chain_id = await api.chain_id()
            admin = EhrUser(SigningKey.load(admin_key_path(cluster.data_dir)), api, chain_id)
            patient = EhrUser(SigningKey.generate(), api.at(records["node3"].http_url), chain_id)
            doctor = EhrUser(SigningKey.generate(), api, chain_id)
            await admin.add_user(public_key_of_peer_id(manager_peer), "ehr_manager")
            await admin.add_user(patient.pk, "patient", "area-1")
            await admin.add_user(doctor.pk, "doctor", "area-1")
            hosts = [P2PHost(HostConfig(seed=u.key.seed)) for u in (patient, doctor)]
            for host in hosts:
                await host.start()
                await host.dial(records["node1"].multiaddr)
            try:
                yield World(cluster, admin, patient, doctor, manager_peer, hosts[0], hosts[1])
            finally:
                for host in hosts:
                    await host.stop()


async def _file_record(w: World) -> tuple[str, bytes]:
    payload = make_payload(TREMOR, 20.0, np.random.default_rng(5))
    now = int(time.time() * 1000)
    document = build_record(
        TREMOR, run_local(TREMOR, payload), patient_id(w.patient.uid), RecordContext(MARKER, now - 20_000, now)
    )
    manager_pk = public_key_of_peer_id(w.manager_peer)
    cid = await w.patient.store_local_result(w.patient_host, w.manager_peer, manager_pk, document)
    return cid, document


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(path)
    return found


async def test_granted_read_and_no_plaintext_at_rest(world: World) -> None:
    w = world
    cid, document = await _file_record(w)
    assert cid in await w.patient.records()
    await w.patient.grant(w.doctor.pk, "*", 0)
    got, height = await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)
    assert [r.cid for r in got] == [cid] and got[0].plaintext == document and height > 0
    assert parse_record(got[0].plaintext).context.device == MARKER
    # Only ciphertext and CIDs are stored: the marker is in no node's files (blockstores, ledgers, logs).
    assert _files_containing(w.cluster.data_dir, MARKER.encode()) == []


async def test_device_without_libp2p_reads_through_the_manager_http_relay(world: World) -> None:
    w = world
    cid, document = await _file_record(w)
    await w.patient.grant(w.doctor.pk, "*", 0)
    manager = w.admin.api.at(w.cluster.records["node1"].http_url)
    got, height = await w.doctor.request_records_http(manager, w.patient.pk)
    assert [(r.cid, r.plaintext) for r in got] == [(cid, document)] and height > 0
    with pytest.raises(NodeRefused, match="400"):
        await manager.ehr_request("zz")


async def test_replayed_request_is_refused(world: World) -> None:
    """Sending the same request twice is served twice (idempotent); another transaction spending the same nonce is
    a replay; a stale request is expired."""
    w = world
    await _file_record(w)
    await w.patient.grant(w.doctor.pk, "*", 0)
    tx = await w.doctor.signed_call("retrieve_ehrs", [w.patient.pk])
    request = wire.sign_request(w.doctor.key, "retrieve", {"tx": tx.raw, "issued_ms": int(time.time() * 1000)})
    got, height = await w.doctor.send_retrieve(w.doctor_host, w.manager_peer, request)
    assert len(got) == 1
    again, height_again = await w.doctor.send_retrieve(w.doctor_host, w.manager_peer, request)
    assert [r.plaintext for r in again] == [r.plaintext for r in got] and height_again == height
    body = {**tx.body, "gas_limit": 1_999_999}  # another transaction with the spent nonce
    other = Tx.create(w.doctor.key, tx.chain_id, "call", tx.nonce, body)
    replay = wire.sign_request(w.doctor.key, "retrieve", {"tx": other.raw, "issued_ms": int(time.time() * 1000)})
    with pytest.raises(SharingError, match="replayed"):
        await w.doctor.send_retrieve(w.doctor_host, w.manager_peer, replay)
    stale = wire.sign_request(w.doctor.key, "retrieve", {"tx": tx.raw, "issued_ms": int(time.time() * 1000) - 120_000})
    with pytest.raises(SharingError, match="expired"):
        await w.doctor.send_retrieve(w.doctor_host, w.manager_peer, stale)


async def test_a_relay_cannot_consume_the_owners_request(world: World) -> None:
    """A third party that forwards the doctor's signed request first gets nothing it can open, and the doctor,
    sending the same request afterwards, is served (it was refused as a replay before)."""
    w = world
    cid, document = await _file_record(w)
    await w.patient.grant(w.doctor.pk, "*", 0)
    tx = await w.doctor.signed_call("retrieve_ehrs", [w.patient.pk])
    request = wire.sign_request(w.doctor.key, "retrieve", {"tx": tx.raw, "issued_ms": int(time.time() * 1000)})
    relay = EhrUser(SigningKey.generate(), w.admin.api, w.admin.chain_id)
    relay_host = P2PHost(HostConfig(seed=relay.key.seed))
    await relay_host.start()
    try:
        await relay_host.dial(w.cluster.records["node1"].multiaddr)
        raw = await relay_host.request(
            w.manager_peer, wire.EHR_PROTOCOL, request, timeout_s=60, max_response_bytes=wire.MAX_RESPONSE_BYTES
        )
    finally:
        await relay_host.stop()
    entries = wire.decode_answer(raw)["records"]
    assert isinstance(entries, list) and len(entries) == 1  # served, but for the doctor's key only
    with pytest.raises(KeyStoreError, match="does not open"):
        relay.open_answer(raw)
    got, height = await w.doctor.send_retrieve(w.doctor_host, w.manager_peer, request)
    assert [(r.cid, r.plaintext) for r in got] == [(cid, document)] and height > 0


async def test_revocation_and_expiry_take_effect_on_the_next_request(world: World) -> None:
    w = world
    await _file_record(w)
    await w.patient.grant(w.doctor.pk, "*", 0)
    assert len((await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk))[0]) == 1
    await w.patient.revoke(w.doctor.pk)
    with pytest.raises(SharingError, match="denied: no policy"):
        await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)
    # A policy that expires in 2 s (ledger time): served before, denied after.
    expires = int(time.time()) + 2
    await w.patient.grant(w.doctor.pk, "*", expires)
    assert len((await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk))[0]) == 1

    async def refused_as_expired() -> bool:
        try:
            await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)
        except SharingError as exc:
            assert "expired" in str(exc)
            return True
        return False

    await await_until(refused_as_expired, timeout_s=20, interval=0.5, what="the policy expires")


async def test_break_glass_is_honoured_within_its_scope_and_window(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the admin upgrades the genesis ehr contract in place (`ehrnet admin upgrade-ehr`), a doctor with no
    policy who opens a break-glass access is served the records in its scope, and denied once the window closes;
    the access is reviewable with its scope and window. (Version 1 recorded it and the manager still denied.)"""
    w = world
    cid, document = await _file_record(w)
    await _file_record(w)  # a second record, outside the access's scope
    admin_args = ["admin", "--data-dir", str(w.cluster.data_dir)]
    upgrade = ["admin", "upgrade-ehr", "--data-dir", str(w.cluster.data_dir)]
    assert await asyncio.to_thread(admin_main, upgrade) == 0
    assert "ehr upgraded to ehr_v2" in capsys.readouterr().out
    assert await asyncio.to_thread(admin_main, upgrade) == 0
    assert "already runs" in capsys.readouterr().out

    opened = await w.doctor.break_glass(w.patient.pk, cid, 10, "unconscious in A&E")
    got, height = await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)
    assert [(r.cid, r.plaintext) for r in got] == [(cid, document)] and height > 0

    reviews = ["admin", "reviews", *admin_args[1:], "--json"]
    assert await asyncio.to_thread(admin_main, reviews) == 0
    [entry] = json.loads(capsys.readouterr().out)["reviews"]
    assert (entry["id"], entry["scope"], entry["expires_at"]) == (opened["id"], cid, opened["expires_at"])

    expires_at = opened["expires_at"]
    await await_until(lambda: time.time() > expires_at + 1, timeout_s=30, interval=0.2, what="the window closes")
    with pytest.raises(SharingError, match="denied: the break-glass window #1 has closed"):
        await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)


async def test_after_delete_user_no_node_can_produce_the_plaintext(world: World) -> None:
    w = world
    cid, _ = await _file_record(w)
    await w.admin.delete_user(w.patient.pk)
    manager_api = w.admin.api.at(w.cluster.records["node1"].http_url)

    async def erased() -> bool:
        return bool((await manager_api.status())["ehr_manager"]["erased_users"] >= 1)

    await await_until(erased, timeout_s=20, what="the manager acts on the erasure event")
    with pytest.raises(SharingError):
        await w.doctor.request_records(w.doctor_host, w.manager_peer, w.patient.pk)
    # The manager's key store no longer holds any wrapped key of the patient's record: the ciphertext that
    # may remain anywhere cannot be decrypted by anyone.
    w.cluster.down(timeout=10)
    keys = KeyStore(Path(w.cluster.records["node1"].data_dir) / "keystore")
    try:
        assert keys.records_of(w.patient.uid) == []
        assert keys.readers(CID.parse(cid)) == []
    finally:
        keys.close()
