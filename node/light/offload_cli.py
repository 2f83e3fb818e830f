"""`ehrnet light offload`: the device profiles health-data tasks, decides where each runs (paper Sec. IV, MILP
under C1–C4), offloads the chosen ones encrypted to an edge node over libp2p and runs the rest itself; every
result becomes the patient's encrypted FHIR EHR — filed by the edge node, or sealed for the EHRs manager who
files it (docs/OFFLOAD.md). The new records are then counted through state proofs.

numpy, scipy and the offload package are imported only here, so the other light commands stay small.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from node.light import args as parse
from node.light.sharing_cli import emit, fail, run, session

if TYPE_CHECKING:
    from node.ehr.sharing_client import EhrUser
    from node.p2p.bridge import P2PHost

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_TASKS = "hrv:600,hrv:120,tremor:60,tremor:20"
DEVICE_ID = "ehrnet-light"


def register(cmds: SubParsers, session_args: Callable[[argparse.ArgumentParser], None]) -> None:
    offload = cmds.add_parser("offload", help="profile, decide and offload tasks; results become my EHRs")
    session_args(offload)
    offload.add_argument("--edge", metavar="MULTIADDR", help="the edge node (default: from the config)")
    offload.add_argument("--manager", metavar="MULTIADDR", help="the EHRs manager (default: from the config)")
    offload.add_argument("--tasks", default=DEFAULT_TASKS, help=f"TASK:SECONDS,... (default {DEFAULT_TASKS})")
    offload.add_argument("--seed", type=int, default=None, help="seed of the synthetic sensor data")
    offload.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the records (default 60)")
    offload.set_defaults(func=cmd_offload)


class _Transport:
    """offload.session.Transport over the device's libp2p peer."""

    def __init__(self, host: P2PHost, edge_peer: str) -> None:
        self.host, self.edge_peer = host, edge_peer

    async def offload(self, wire: bytes) -> bytes:
        from node.edge.service import OFFLOAD_PROTOCOL

        return await self.host.request(self.edge_peer, OFFLOAD_PROTOCOL, wire, timeout_s=120)


class _ManagerRecords:
    """offload.session.LocalRecords: a result computed on the device goes to the EHRs manager, sealed for it."""

    def __init__(self, user: EhrUser, host: P2PHost, manager_peer: str) -> None:
        self.user, self.host, self.manager_peer = user, host, manager_peer

    async def store(self, patient: bytes, task: str, result: Any, record: Any) -> None:
        from node.p2p.identity import public_key_of_peer_id
        from offload.fhir import build_record, patient_id
        from primitives.keys import address_of

        if record is None:
            return
        document = build_record(task, result, patient_id(address_of(patient)), record)
        manager_pk = public_key_of_peer_id(self.manager_peer)
        await self.user.store_local_result(self.host, self.manager_peer, manager_pk, document)


def cmd_offload(args: argparse.Namespace) -> int:
    try:
        plan = parse.tasks(args.tasks)
    except parse.UsageError as exc:
        return fail(str(exc), 2)

    async def main() -> int:
        import asyncio

        import nacl.public
        import numpy as np

        from node.ehr.sharing_client import SharingError
        from node.light.errors import LightError
        from node.light.session import libp2p_host, peer_of, role_multiaddr
        from node.p2p.bridge import P2PError
        from node.p2p.identity import public_key_of_peer_id
        from offload.device import EDGE, PHONE, builtin_profile
        from offload.sealed_messages import box_public_key_from_identity
        from offload.session import OffloadSession, SessionTask
        from offload.workload import make_payload

        async with session(args) as s:
            edge = role_multiaddr(s.network, "edge", args.edge, "--edge")
            manager = role_multiaddr(s.network, "manager", args.manager, "--manager")
            uid = await s.my_uid()
            before = len(await s.state.records(uid))
            rng = np.random.default_rng(args.seed)
            now_ms = int(time.time() * 1000)
            tasks = [
                SessionTask(kind, make_payload(kind, seconds, rng), (now_ms - int(seconds * 1000), now_ms))
                for kind, seconds in plan
            ]
            try:
                async with libp2p_host([edge, manager]) as host:
                    offload = OffloadSession(
                        device_key=nacl.public.PrivateKey.generate(),
                        edge_public=box_public_key_from_identity(public_key_of_peer_id(peer_of(edge))),
                        transport=_Transport(host, peer_of(edge)),
                        device=builtin_profile(PHONE),
                        edge=builtin_profile(EDGE),
                        patient=s.user.pk,
                        device_id=DEVICE_ID,
                        records=_ManagerRecords(s.user, host, peer_of(manager)),
                    )
                    summary = (await offload.run(tasks)).summary()
            except P2PError as exc:
                raise SharingError(f"libp2p: {exc}") from exc
            # The edge node files its results asynchronously: wait until the chain (proof-verified) has them all.
            deadline = time.monotonic() + args.wait
            while True:
                await s.follower.sync()
                found = await s.state.records(uid)
                if len(found) >= before + len(tasks):
                    break
                if time.monotonic() > deadline:
                    raise LightError(f"only {len(found) - before} of {len(tasks)} records were registered")
                await asyncio.sleep(0.5)
            height = s.follower.height
        new = [str(r.get("cid")) for r in found[before:]]
        lines = [f"{t['kind']:<9} ran on the {t['where']:<16} in {t['run_ms']:7.1f} ms" for t in summary["tasks"]]
        lines.append(f"decided in {summary['decide_ms']:.1f} ms; objective {summary['objective']:.3f} (all-local = 1)")
        lines += [f"registered {cid}" for cid in new]
        lines.append(f"{len(new)} new record(s) (proof-verified at height {height})")
        emit(args, {"summary": summary, "records": new, "height": height}, lines)
        return 0

    return run(main)
