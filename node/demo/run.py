"""`ehrnet demo`: the project's main job on its embedded default — where the paper's two halves meet.

A local cluster of real node processes starts (4 validators; node1 runs the EHRs manager, node4 is an edge node,
all keep LMDB stores under the data dir). The admin registers the manager, the edge node, a patient with a phone,
a doctor and a stranger in the `ehr` contract. The phone profiles real health-data tasks, decides per task where
to run them (exact MILP over time, energy and memory under C1–C4) and offloads the chosen ones encrypted to the
edge node; every result becomes an encrypted FHIR EHR whose CID is registered on the ledger. The patient grants
the doctor, who reads through the 4-step protocol and decrypts locally; the stranger is denied and penalised;
the patient revokes and the doctor is denied; in an emergency the admin upgrades the `ehr` contract in place and
the doctor breaks the glass for one record for a few seconds, reads it, and is denied once the window closes; the
admin deletes the patient and the records' keys are destroyed.
Each step is narrated with its timing; the demo exits 0 and leaves no process behind (`--keep` leaves the
cluster up for exploring).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.cluster import print_table, start_cluster
from node.cluster.config import generate_network
from node.cluster.errors import ClusterError
from node.cluster.local import Cluster, default_data_dir
from node.cluster.network_init import admin_key_path
from node.demo.data_dir import prepare_demo_dir
from node.demo.story_log import install_story_logging
from node.p2p.identity import public_key_of_peer_id
from primitives.keys import SigningKey

# libp2p, aiohttp and the analyses are imported where the story needs them: building the CLI parser must stay
# light (every `ehrnet` command imports this module to register `demo`).
if TYPE_CHECKING:
    from node.client import AsyncNodeClient
    from node.ehr.sharing_client import EhrUser
    from node.p2p.bridge import P2PHost

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    demo = sub.add_parser("demo", help="run the end-to-end demo on a local cluster")
    demo.add_argument("--data-dir", type=Path, default=None, help="where the demo cluster keeps its state")
    demo.add_argument("--keep", action="store_true", help="leave the cluster running for exploring")
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="delete the contents of a --data-dir the demo did not create (never one with a running cluster)",
    )
    demo.set_defaults(func=run_demo)


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.step = 0
        self.timings: list[tuple[str, float]] = []
        self._current = ""
        self._since = 0.0

    def say(self, text: str) -> None:
        self.step += 1
        self._current, self._since = text, time.monotonic()
        print(f"\n[{time.monotonic() - self.started:6.2f} s] step {self.step}: {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"          {text}", flush=True)

    def done(self, detail: str = "") -> None:
        took = time.monotonic() - self._since
        self.timings.append((self._current, took))
        print(f"          done in {1000 * took:.0f} ms{'; ' + detail if detail else ''}", flush=True)


class P2PTransport:
    """offload.session.Transport over the device's own libp2p peer."""

    def __init__(self, host: P2PHost, edge_peer: str) -> None:
        self.host, self.edge_peer = host, edge_peer

    async def offload(self, wire: bytes) -> bytes:
        from node.edge.service import OFFLOAD_PROTOCOL
        from node.p2p.types import P2PError
        from offload.errors import TransportError

        try:
            return await self.host.request(self.edge_peer, OFFLOAD_PROTOCOL, wire, timeout_s=120)
        except P2PError as exc:
            # A lost connection or stream is the transport's failure: the session runs the task on the phone
            # instead of losing the demo (a busy edge's keepalive once closed the connection mid-request).
            raise TransportError(f"edge {self.edge_peer[-8:]} unreachable: {exc}") from exc


class ManagerRecords:
    """offload.session.LocalRecords: results computed on the phone go to the EHRs manager, sealed for it."""

    def __init__(self, patient: EhrUser, host: P2PHost, manager_peer: str) -> None:
        self.patient, self.host, self.manager_peer = patient, host, manager_peer
        self.stored: list[str] = []

    async def store(self, patient: bytes, task: str, result: Any, record: Any) -> None:
        from offload.fhir import build_record, patient_id
        from primitives.keys import address_of

        if record is None:
            return
        document = build_record(task, result, patient_id(address_of(patient)), record)
        manager_pk = public_key_of_peer_id(self.manager_peer)
        self.stored.append(await self.patient.store_local_result(self.host, self.manager_peer, manager_pk, document))


def run_demo(args: argparse.Namespace) -> int:
    data_dir: Path = (args.data_dir or default_data_dir().parent / "demo").resolve()
    prepare_demo_dir(data_dir, fresh=args.fresh, running_nodes=_running_nodes)
    say = Narrator()
    # Library warnings (py-libp2p's multi-line stream errors) become one line under the step; in full in the log.
    story = install_story_logging(data_dir / "demo.log", lambda: f"step {say.step}")
    say.say(f"start a local 4-node cluster (real processes, Noise-encrypted libp2p, LMDB stores in {data_dir})")
    cluster = start_cluster(generate_network(4, name="demo4"), data_dir, timeout=60)
    try:
        say.done("4 validators meshed; node1 runs the EHRs manager, node4 is the edge node")
        story.name_peers({record.peer_id: name for name, record in cluster.records.items()})
        print_table(cluster)
        asyncio.run(_story(cluster, data_dir, say))
    except BaseException:
        if not args.keep:
            cluster.down(timeout=5)
        raise
    if args.keep:
        print(f"\ncluster left running; stop it with: ehrnet cluster down --data-dir {data_dir}")
        return 0
    say.say("stop the cluster (SIGTERM; every node shuts down in order)")
    cluster.down()
    left = [n for n in cluster.records if cluster.alive(n)]
    if left:
        raise ClusterError(f"nodes still running after shutdown: {', '.join(left)}")
    say.done("no node process left")
    print("\nstep timings:")
    for text, took in say.timings:
        print(f"  {1000 * took:8.0f} ms  {text}")
    if story.shown:
        print(f"\n{story.shown + story.repeats} network warnings, in full in {data_dir / 'demo.log'}")
    print("\ndemo finished: OK")
    return 0


def _running_nodes(data_dir: Path) -> list[str]:
    from node.cluster.config import load_network
    from node.cluster.network_init import RESOLVED_NAME

    config = data_dir / RESOLVED_NAME
    if not config.exists():
        return []
    cluster = Cluster(load_network(config), data_dir)
    return [name for name in cluster.records if cluster.alive(name)]


async def _story(cluster: Cluster, data_dir: Path, say: Narrator) -> None:
    from node.client import AsyncNodeClient
    from node.ehr.sharing_client import EhrUser
    from node.p2p.bridge import HostConfig, P2PHost

    records = cluster.records
    manager_peer, edge_peer = records["node1"].peer_id, records["node4"].peer_id
    keys_dir = data_dir / "demo-keys"
    people = {name: SigningKey.load_or_create(keys_dir / f"{name}.key") for name in ("patient", "doctor", "stranger")}
    async with AsyncNodeClient.connect(records["node2"].http_url) as api:
        manager_api = api.at(records["node1"].http_url)
        chain_id = await api.chain_id()
        admin = EhrUser(SigningKey.load(admin_key_path(data_dir)), api, chain_id)
        patient = EhrUser(people["patient"], api.at(records["node3"].http_url), chain_id)
        doctor = EhrUser(people["doctor"], api.at(records["node2"].http_url), chain_id)
        stranger = EhrUser(people["stranger"], api.at(records["node3"].http_url), chain_id)

        say.say("the admin registers the EHRs manager, the edge node, a patient, a doctor and a stranger (AddUser)")
        for pk, role, area in (
            (public_key_of_peer_id(manager_peer), "ehr_manager", ""),
            (public_key_of_peer_id(edge_peer), "edge", ""),
            (patient.pk, "patient", "area-7"),
            (doctor.pk, "doctor", "area-7"),
            (stranger.pk, "carer", "area-3"),
        ):
            await admin.add_user(pk, role, area)
        say.done("5 add_user transactions final on the ledger")

        device = P2PHost(HostConfig(seed=people["patient"].seed))
        await device.start()
        try:
            await device.dial(records["node4"].multiaddr)
            await device.dial(records["node1"].multiaddr)
            await _offload(say, patient, device, edge_peer, manager_peer)
            await _share(say, patient, doctor, stranger, admin, (manager_peer, records["node1"].multiaddr), manager_api)
        finally:
            await device.stop()


async def _offload(say: Narrator, patient: EhrUser, device: P2PHost, edge_peer: str, manager_peer: str) -> None:
    import nacl.public
    import numpy as np

    from node.ehr.sharing_client import SharingError
    from offload.device import EDGE, PHONE, builtin_profile
    from offload.sealed_messages import box_public_key_from_identity
    from offload.session import OffloadSession, SessionTask
    from offload.store import ProfileStore, default_profile_dir
    from offload.workload import HRV, TREMOR, make_payload

    say.say("the phone profiles 4 real tasks, decides where each runs (MILP, weights 1/3, C1–C4) and offloads")
    rng = np.random.default_rng(2021)
    now_ms = int(time.time() * 1000)
    plan = [(HRV, 600.0), (HRV, 120.0), (TREMOR, 60.0), (TREMOR, 20.0)]
    tasks = [
        SessionTask(kind, make_payload(kind, seconds, rng), (now_ms - int(seconds * 1000), now_ms))
        for kind, seconds in plan
    ]
    local_records = ManagerRecords(patient, device, manager_peer)
    # Profiles describe this machine, not the cluster: kept between runs, so only the first demo measures them.
    profile_dir = default_profile_dir()
    session = OffloadSession(
        device_key=nacl.public.PrivateKey.generate(),
        edge_public=box_public_key_from_identity(public_key_of_peer_id(edge_peer)),
        transport=P2PTransport(device, edge_peer),
        device=builtin_profile(PHONE),
        edge=builtin_profile(EDGE),
        patient=patient.pk,
        device_id="phone-sd845",
        records=local_records,
        store=ProfileStore(profile_dir),
    )
    report = await session.run(tasks)
    summary = report.summary()
    if report.profiled:
        say.detail(f"profiled {', '.join(report.profiled)} in {report.profile_ms:.0f} ms; stored in {profile_dir}")
    else:
        say.detail(f"task profiles from {profile_dir} (measured in an earlier run)")
    for task in summary["tasks"]:
        say.detail(f"{task['kind']:<9} ran on the {task['where']:<16} in {task['run_ms']:7.1f} ms")
    say.done(f"decided in {summary['decide_ms']:.1f} ms; objective {summary['objective']:.3f} (all-local = 1)")

    say.say("results become encrypted FHIR EHRs: edge and manager store ciphertext and register CIDs on chain")
    deadline = time.monotonic() + 60
    cids: list[str] = []
    while time.monotonic() < deadline:
        cids = await patient.records()
        if len(cids) >= len(tasks):
            break
        await asyncio.sleep(0.2)
    if len(cids) < len(tasks):
        raise SharingError(f"only {len(cids)} of {len(tasks)} records were registered")
    for cid in cids:
        say.detail(f"registered {cid}")
    say.done(f"{len(cids)} EHRs registered (only CIDs and salted hashes on the ledger)")


BREAK_GLASS_SECONDS = 6  # the emergency window, in block time: short, so the demo shows it closing


async def _break_glass(
    say: Narrator, patient: EhrUser, doctor: EhrUser, admin: EhrUser, doctor_host: P2PHost, manager_peer: str
) -> None:
    """Emergency access: honoured by the manager within its scope and window only, and left for the admin's review.
    The genesis contract (version 1) records break-glass without honouring it, so the admin first upgrades it in
    place (docs/VM.md, "Upgrading a contract")."""
    from node.ehr.sharing_client import SharingError

    say.say(
        f"emergency: the doctor (no policy now) breaks the glass for one record for {BREAK_GLASS_SECONDS} s; "
        "reads it; is denied after the window"
    )
    if await admin.upgrade_ehr():
        say.detail("the admin upgraded the ehr contract in place to version 2 (storage kept: users, records, policies)")
    cids = await patient.records()
    opened = await doctor.break_glass(patient.pk, cids[0], BREAK_GLASS_SECONDS, "unconscious in A&E")
    got, height = await doctor.request_records(doctor_host, manager_peer, patient.pk)
    if [record.cid for record in got] != cids[:1]:
        raise SharingError(f"break-glass served {[r.cid for r in got]}, not the one record in its scope")
    say.detail(f"served {len(got)} of {len(cids)} records (the one in scope) at height {height}")
    expires_at = int(opened["expires_at"])
    # Block time follows the wall clock (docs/LEDGER.md §9): a second past the window, the next block is after it.
    await asyncio.sleep(max(0.0, expires_at + 1 - time.time()))
    try:
        await doctor.request_records(doctor_host, manager_peer, patient.pk)
        raise SharingError("the doctor was served after the break-glass window closed")
    except SharingError as exc:
        if "window" not in str(exc):
            raise
        say.detail(f"refused: {exc}")
    entry = await admin.view("break_glass_entry", [opened["id"]])
    status = str(entry.get("status")) if isinstance(entry, dict) else "not found for"
    say.done(f"break-glass #{opened['id']} is on the ledger, {status} the admin's review (ehrnet admin reviews)")


async def _share(
    say: Narrator,
    patient: EhrUser,
    doctor: EhrUser,
    stranger: EhrUser,
    admin: EhrUser,
    manager: tuple[str, str],
    manager_api: AsyncNodeClient,
) -> None:
    from node.ehr.sharing_client import SharingError
    from node.p2p.bridge import HostConfig, P2PHost
    from offload.fhir import parse_record

    manager_peer, manager_addr = manager

    say.say("the patient grants the doctor access to all their records for one hour (PolicyList)")
    await patient.grant(doctor.pk, "*", int(time.time()) + 3600)
    say.done("set_policy final")

    doctor_host = P2PHost(HostConfig(seed=doctor.key.seed))
    await doctor_host.start()
    try:
        await doctor_host.dial(manager_addr)
        say.say("the doctor requests the records: request → verify → retrieve → feedback (RetrieveEHRs)")
        got, height = await doctor.request_records(doctor_host, manager_peer, patient.pk)
        shown = []
        for record in got:
            analysis = parse_record(record.plaintext)
            shown.append(f"{analysis.task}: {json.dumps(analysis.result, sort_keys=True)[:90]}")
        for line in shown:
            say.detail(line)
        say.done(f"{len(got)} records decrypted by the doctor; the access is on the ledger at height {height}")

        stranger_host = P2PHost(HostConfig(seed=stranger.key.seed))
        await stranger_host.start()
        try:
            await stranger_host.dial(manager_addr)
            say.say("a stranger (registered carer, no policy) requests the same records")
            try:
                await stranger.request_records(stranger_host, manager_peer, patient.pk)
                raise SharingError("the stranger was served: access control failed")
            except SharingError as exc:
                if "denied" not in str(exc):
                    raise
                say.detail(f"refused: {exc}")
            user = await admin.view("get_user", [stranger.pk])
            warnings = user.get("warnings") if isinstance(user, dict) else None
            say.done(f"denied and penalised (Penalty): the stranger now has {warnings!s} warning(s)")
        finally:
            await stranger_host.stop()

        say.say("the patient revokes the doctor's access; the doctor asks again")
        await patient.revoke(doctor.pk)
        try:
            await doctor.request_records(doctor_host, manager_peer, patient.pk)
            raise SharingError("the doctor was served after revocation")
        except SharingError as exc:
            if "denied" not in str(exc):
                raise
            say.detail(f"refused: {exc}")
        say.done("revocation took effect on the next request")

        await _break_glass(say, patient, doctor, admin, doctor_host, manager_peer)

        say.say("the admin deletes the patient (DeleteUser): the records' keys are destroyed (crypto-shredding)")
        await admin.delete_user(patient.pk)
        # Every node acts on the contract's erasure event as it follows the chain; wait for the manager's.
        deadline = time.monotonic() + 20
        while (await manager_api.status()).get("ehr_manager", {}).get("erased_users", 0) < 1:
            if time.monotonic() > deadline:
                raise SharingError("the EHRs manager did not act on the erasure event")
            await asyncio.sleep(0.1)
        try:
            await doctor.request_records(doctor_host, manager_peer, patient.pk)
            raise SharingError("records were served after the patient was deleted")
        except SharingError as exc:
            say.detail(f"refused: {exc}")
        say.done("the patient is gone from the contract and the manager holds no key for their records")
    finally:
        await doctor_host.stop()
